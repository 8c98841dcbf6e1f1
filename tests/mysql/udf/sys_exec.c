/*
 * A test-only UDF with lib_mysqludf_sys's signature: sys_exec(command) runs the string with
 * system() and returns its exit status, waiting for it, as the real one does. Written for
 * callbridge's tests (tests/mysql/conftest.py compiles it with gcc and the MariaDB client
 * headers); never install it on a real server: it runs any string as the database server.
 */
#include <stdlib.h>
#include <string.h>
#include <mysql.h>

my_bool sys_exec_init(UDF_INIT *initid, UDF_ARGS *args, char *message)
{
    if (args->arg_count != 1) {
        strcpy(message, "sys_exec(command) takes one argument");
        return 1;
    }
    args->arg_type[0] = STRING_RESULT;
    initid->maybe_null = 1;
    return 0;
}

void sys_exec_deinit(UDF_INIT *initid)
{
    (void)initid;
}

long long sys_exec(UDF_INIT *initid, UDF_ARGS *args, char *is_null, char *error)
{
    char *command;
    long long status;
    (void)initid;
    (void)error;
    if (args->args[0] == NULL) {
        *is_null = 1;
        return 0;
    }
    command = malloc(args->lengths[0] + 1);
    if (command == NULL) {
        *error = 1;
        return 0;
    }
    memcpy(command, args->args[0], args->lengths[0]);
    command[args->lengths[0]] = '\0';
    status = system(command);
    free(command);
    return status;
}
