"""SQL that turns the PBX's writes to its monitor tables into callbridge events.

Two modes, one mechanism. Triggers on ``monitor_user_calls`` and ``monitor_devices`` call small
stored procedures that insert one row per event into ``callbridge_outbox``, in the same
transaction as the PBX's write (so an event exists exactly when the PBX's change commits):

* ``outbox`` (recommended): nothing else. ``MysqlSource`` reads the outbox.
* ``sys_exec`` (sites that already run the vendor's ``lib_mysqludf_sys`` UDF): after the insert
  the procedure runs a *detached* ``curl "<url>?outbox_id=<id>&token=<token>"`` through
  ``sys_exec``, output to the null device, so the PBX's write waits for a fork, never for the
  network. The command is built only from the URL, token and curl path, all validated *here*
  against strict character sets, and the row id, an integer: no PBX-supplied text (caller
  numbers, names) can reach the shell. The vendor's own trigger concatenates those values into
  the command line, which lets anyone who can set a caller name run commands as the database
  server.

**The PBX's writes never fail because of us.** Every trigger and procedure starts with a
CONTINUE HANDLER: any error of ours (a dropped table, a missing UDF or procedure) is counted in
``callbridge_errors`` (which ``callbridge mysql check`` reports) and the PBX's statement goes
on; at worst an event is lost, never the PBX's row. Parameters are ``TEXT``/``BIGINT``, so a PBX
whose columns are wider than the document's fits, and values are cut to ``VALUE_LIMIT``
characters. Triggers and procedures run with the sql_mode they were created with, which the
statements fix (``SQL_MODE``), so neither the installer's nor the PBX's session mode matters.

How row changes map to events (``docs/mysql.md`` has the table and its limits):

* user call gets direction 1/2 (insert, or update from 0)  -> 16 incoming / 17 outgoing
* status becomes 2 (active) for the first time              -> 18 answered
* status becomes 6 (closed) or 8 (killme), or the row is deleted before that:
  never active -> 19 (rejected/missed); was active -> 21 with ``cb_hangup_unknown=1`` (the
  tables do not say who hung up, so 20 is never produced and nobody is blamed)
* device row inserted -> 1 (login); deleted -> 2 (logout)

Identifiers go out as the document shows them: ``LPAD(HEX(id), 8, '0')`` (a wider id whole,
for the parser to refuse, never cut). The event parameters are built with ``JSON_OBJECT``,
which escapes any content, so quotes, newlines and backslashes in a caller's name are data.

"Answered" needs memory across updates (active -> hold -> closed must still count as
answered), kept in ``callbridge_answered``, one row per open answered user call.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from .schema import quote_literal

OUTBOX_TABLE = "callbridge_outbox"
ANSWERED_TABLE = "callbridge_answered"
ERRORS_TABLE = "callbridge_errors"
PROCEDURES = (
    "callbridge_emit",
    "callbridge_call_event",
    "callbridge_user_call",
    "callbridge_device",
)
TRIGGERS = {
    "callbridge_muc_ai": ("monitor_user_calls", "INSERT"),
    "callbridge_muc_au": ("monitor_user_calls", "UPDATE"),
    "callbridge_muc_ad": ("monitor_user_calls", "DELETE"),
    "callbridge_dev_ai": ("monitor_devices", "INSERT"),
    "callbridge_dev_ad": ("monitor_devices", "DELETE"),
}
#: Seconds a detached curl may take in sys_exec mode (the PBX's write does not wait for it).
CURL_MAX_TIME = 3
DEFAULT_CURL = "curl"
#: Seconds between two nudges from one PBX session; shorter than the source's nudge window.
NUDGE_EVERY = 0.5
#: The PBX session's user variable holding when it last nudged (a UNIX time).
NUDGE_VARIABLE = "@callbridge_nudged_at"
#: The sql_mode our triggers and procedures are created with, and so run with, whatever the
#: PBX's session or the installer's uses: not strict (a value that does not fit is cut with a
#: warning, never an error), no ANSI_QUOTES or NO_BACKSLASH_ESCAPES surprises.
SQL_MODE = "NO_ENGINE_SUBSTITUTION"
#: Not the document's: set to ``1`` on a 21 from the tables, which do not say who hung up.
HANGUP_UNKNOWN = "cb_hangup_unknown"
#: The call is recorded (``callbridge.voispeed.events.RECORDING``).
RECORDING = "cb_recording"

#: URL characters accepted in sys_exec mode: none has a meaning to sh or cmd.exe inside
#: double quotes, to curl's URL globbing, or to a SQL string literal.
_URL_CHARS = re.compile(r"[A-Za-z0-9._~:/-]+")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,256}")
#: A path to curl: POSIX or Windows (``C:\Program Files (x86)\curl\curl.exe``); no quotes,
#: ``%``, ``$``, ``&``, ``!`` or other characters sh or cmd.exe would read inside double quotes.
_CURL_PATH = re.compile(r"[A-Za-z0-9._~:/\\ ()+-]{1,255}")
SERVER_OS = ("posix", "windows")


class TriggerMode(StrEnum):
    """How the triggers hand events over."""

    OUTBOX = "outbox"
    SYS_EXEC = "sys_exec"


class UnsafeValue(ValueError):
    """A URL or token that cannot be put into a shell command safely (never echoes a token)."""


def validate_url(url: str) -> str:
    """Accept ``http(s)://host[:port]/path`` made of ``[A-Za-z0-9._~:/-]`` only.

    No query, fragment, user info, spaces, quotes, ``%``, ``$``, backticks or other shell or
    SQL metacharacters: the value goes into a shell command line via ``sys_exec``.
    """
    if not _URL_CHARS.fullmatch(url or ""):
        raise UnsafeValue(
            "URL may contain only letters, digits and . _ ~ : / - "
            "(no query string, spaces, quotes, %, $, & or other shell characters)"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeValue("URL must be http://host[:port]/path or https://...")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise UnsafeValue("URL has an invalid port") from None
    return url


def validate_token(token: str | SecretStr) -> str:
    """Accept 16-256 characters of ``[A-Za-z0-9_-]``; the error never contains the token."""
    text = token.get_secret_value() if isinstance(token, SecretStr) else token
    if not _TOKEN.fullmatch(text or ""):
        raise UnsafeValue(
            "token must be 16-256 characters of letters, digits, '_' and '-' "
            "(it goes into a shell command line)"
        )
    return text


def validate_curl(path: str) -> str:
    """Accept a path to curl made of letters, digits, spaces and ``. _ ~ : / \\ ( ) + -``."""
    if not _CURL_PATH.fullmatch(path or ""):
        raise UnsafeValue(
            "curl path may contain only letters, digits, spaces and . _ ~ : / \\ ( ) + -"
        )
    return path


def _support_statements() -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS `{OUTBOX_TABLE}` (
  `id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  `created_at` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  `ssn_event` SMALLINT UNSIGNED NOT NULL,
  `params` MEDIUMTEXT NOT NULL COMMENT 'JSON object: the event parameters, as the document names',
  `origin` VARCHAR(64) NOT NULL DEFAULT '' COMMENT 'table#ID of the row change, for debugging',
  `consumed_at` DATETIME(6) NULL DEFAULT NULL COMMENT 'set by the source in mark mode',
  PRIMARY KEY (`id`),
  KEY `ix_consumed` (`consumed_at`, `id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
        # Outboxes made by earlier versions had TEXT (64 KiB): ten values of 1,000 characters,
        # escaped, may not fit.
        f"ALTER TABLE `{OUTBOX_TABLE}` MODIFY `params` MEDIUMTEXT NOT NULL"
        " COMMENT 'JSON object: the event parameters as the document names them'",
        f"""CREATE TABLE IF NOT EXISTS `{ANSWERED_TABLE}` (
  `companyid` BIGINT UNSIGNED NOT NULL,
  `usercallid` BIGINT UNSIGNED NOT NULL,
  `at` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (`companyid`, `usercallid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
        f"""CREATE TABLE IF NOT EXISTS `{ERRORS_TABLE}` (
  `where` VARCHAR(64) NOT NULL COMMENT 'the trigger or procedure that caught the error',
  `errno` INT NOT NULL,
  `count` BIGINT UNSIGNED NOT NULL DEFAULT 0,
  `first_at` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  `last_at` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  `message` VARCHAR(512) NOT NULL DEFAULT '',
  PRIMARY KEY (`where`, `errno`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
  COMMENT 'errors our triggers swallowed so that the PBX write went on (an event may be lost)'""",
    ]


def _guard(where: str) -> str:
    """The CONTINUE HANDLER every trigger and procedure starts with.

    Any error of ours (a dropped table, a missing UDF, a value that does not fit) is counted in
    ``callbridge_errors`` and the PBX's statement goes on. The handler has its own empty handler:
    if even the count fails (the errors table is gone), nothing reaches the PBX either.
    """
    return f"""  DECLARE CONTINUE HANDLER FOR SQLEXCEPTION
  BEGIN
    DECLARE v_errno INT DEFAULT 0;
    DECLARE v_message TEXT CHARACTER SET utf8mb4 DEFAULT '';
    DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN END;
    GET DIAGNOSTICS CONDITION 1 v_errno = MYSQL_ERRNO, v_message = MESSAGE_TEXT;
    INSERT INTO `{ERRORS_TABLE}` (`where`, `errno`, `count`, `message`)
      VALUES ('{where}', v_errno, 1, LEFT(IFNULL(v_message, ''), 512))
      ON DUPLICATE KEY UPDATE `count` = `count` + 1, `last_at` = CURRENT_TIMESTAMP(6),
        `message` = VALUES(`message`);
  END;"""  # noqa: S608 - constants only


def _sql_text(value: str) -> str:
    """A SQL expression for ``value`` that may hold backslashes (a Windows path to curl).

    ``quote_literal`` refuses backslashes, whose meaning in a literal depends on sql_mode;
    ``CHAR(92)`` is a backslash under every mode.
    """
    if "\\" not in value:
        return quote_literal(value)
    parts = [quote_literal(part) for part in value.split("\\")]
    return "CONCAT(" + ", CHAR(92 USING utf8mb4), ".join(parts) + ")"


def nudge_command(
    url: str, token: str, *, server_os: str = "posix", curl: str = DEFAULT_CURL
) -> tuple[str, str]:
    """The command around the outbox id: (text before the id, text after it).

    Detached, so ``sys_exec`` (which waits for the shell) returns at once and the PBX's write
    never waits for the network: ``&`` on a POSIX shell, ``start "" /b`` on cmd.exe. Output
    goes to the null device, not to the database server's error log.
    """
    query = f'"{url}?outbox_id='
    args = f"-s -g -m {CURL_MAX_TIME} -o "
    if server_os == "windows":
        return (
            f'start "" /b "{curl}" {args}NUL {query}',
            f'&token={token}" >NUL 2>&1',
        )
    return (f'"{curl}" {args}/dev/null {query}', f'&token={token}" >/dev/null 2>&1 &')


def _emit_procedure(
    mode: TriggerMode, url: str | None, token: str | None, server_os: str, curl: str
) -> str:
    notify = ""
    if mode is TriggerMode.SYS_EXEC:
        assert url is not None
        assert token is not None
        # Only the validated URL, token and curl path, and the row id (an integer): no PBX text.
        prefix, suffix = nudge_command(url, token, server_os=server_os, curl=curl)
        # At most one nudge per NUDGE_EVERY seconds per PBX session: the nudge starts a burst
        # of fast polls longer than that, which picks up the events in between too, and each
        # nudge costs the PBX's write a shell start (bench/mysql.py).
        notify = f"""
  IF {NUDGE_VARIABLE} IS NULL OR {NUDGE_VARIABLE} < UNIX_TIMESTAMP(NOW(6)) - {NUDGE_EVERY} THEN
    SET {NUDGE_VARIABLE} = UNIX_TIMESTAMP(NOW(6));
    SET v_rc = sys_exec(CONCAT({_sql_text(prefix)}, CAST(LAST_INSERT_ID() AS CHAR),
      {_sql_text(suffix)}));
  END IF;"""
    # Only constants and the validated URL/token (quoted by quote_literal) go in here.
    return f"""CREATE PROCEDURE `callbridge_emit`(
  IN p_ssn INT,
  IN p_params MEDIUMTEXT CHARACTER SET utf8mb4,
  IN p_origin TEXT CHARACTER SET utf8mb4)
  MODIFIES SQL DATA
  COMMENT 'callbridge: one outbox row per event (mode {mode.value})'
BEGIN
  DECLARE v_rc BIGINT DEFAULT 0;
{_guard("callbridge_emit")}
  INSERT INTO `{OUTBOX_TABLE}` (`ssn_event`, `params`, `origin`)
    VALUES (p_ssn, p_params, LEFT(IFNULL(p_origin, ''), 64));{notify}
END"""  # noqa: S608


#: Longest value put into an event parameter (the ingress accepts up to 1,024 characters).
VALUE_LIMIT = 1000
_T = "TEXT CHARACTER SET utf8mb4"


def _hex_id(name: str) -> str:
    """8 hex digits, as the document writes ids; a wider value whole (the parser refuses it)."""
    return f"LPAD(HEX({name}), GREATEST(8, LENGTH(HEX({name}))), '0')"


def _v(expression: str) -> str:
    return f"NULLIF(LEFT({expression}, {VALUE_LIMIT}), '')"


_CALL_EVENT = f"""CREATE PROCEDURE `callbridge_call_event`(
  IN p_ssn INT,
  IN p_company BIGINT,
  IN p_usercallid BIGINT,
  IN p_userid BIGINT,
  IN p_direction INT,
  IN p_party_nr {_T},
  IN p_party_desc {_T},
  IN p_group {_T},
  IN p_externalid {_T},
  IN p_recording INT,
  IN p_origin {_T})
  MODIFIES SQL DATA
  COMMENT 'callbridge: build the parameters of events 16-21'
BEGIN
  DECLARE v_user_ext {_T};
  DECLARE v_number {_T};
  DECLARE v_ext {_T};
{_guard("callbridge_call_event")}
  SET v_user_ext = (SELECT `extension` FROM `users` WHERE `ID` = p_userid LIMIT 1);
  -- 18 and 19: number = callee, ext = caller; on an incoming call the callee is our user.
  -- 16, 17, 20, 21: number = the remote party, ext = our user.
  IF p_ssn IN (18, 19) AND p_direction = 1 THEN
    SET v_number = v_user_ext, v_ext = p_party_nr;
  ELSE
    SET v_number = p_party_nr, v_ext = v_user_ext;
  END IF;
  CALL `callbridge_emit`(p_ssn, JSON_OBJECT(
      'ssn_event', CAST(p_ssn AS CHAR),
      'company_id', CAST(p_company AS CHAR),
      'sender_id', {_hex_id("p_userid")},
      'sender_type', '0',
      'call_id', {_hex_id("p_usercallid")},
      'ext_id', {_v("p_externalid")},
      'number', {_v("v_number")},
      'ext', {_v("v_ext")},
      'identity', {_v("p_party_desc")},
      'group', {_v("p_group")},
      'direction', CAST(p_direction AS CHAR),
      'user_id', {_hex_id("p_userid")},
      '{HANGUP_UNKNOWN}', IF(p_ssn IN (20, 21), '1', NULL),
      '{RECORDING}', IF(p_recording = 1, '1', NULL)),
    p_origin);
END"""  # noqa: S608 - constants only

_USER_CALL = f"""CREATE PROCEDURE `callbridge_user_call`(
  IN p_deleted INT,
  IN p_old_direction INT,
  IN p_old_status INT,
  IN p_status INT,
  IN p_company BIGINT,
  IN p_usercallid BIGINT,
  IN p_userid BIGINT,
  IN p_direction INT,
  IN p_party_nr {_T},
  IN p_party_desc {_T},
  IN p_group {_T},
  IN p_externalid {_T},
  IN p_recording INT,
  IN p_origin {_T})
  MODIFIES SQL DATA
  COMMENT 'callbridge: map a monitor_user_calls change to events 16-21'
BEGIN
  DECLARE v_company BIGINT DEFAULT IFNULL(p_company, 0);
  DECLARE v_answered INT DEFAULT 0;
{_guard("callbridge_user_call")}
  IF p_direction IN (1, 2) AND p_usercallid IS NOT NULL THEN
    -- 16/17: the direction becomes known (insert, or an update from no_direction)
    IF p_deleted = 0 AND IFNULL(p_old_direction, 0) NOT IN (1, 2) THEN
      CALL `callbridge_call_event`(IF(p_direction = 1, 16, 17), p_company, p_usercallid,
        p_userid, p_direction, p_party_nr, p_party_desc, p_group, p_externalid, p_recording,
        p_origin);
    END IF;
    -- 18: active (2) for the first time; back from hold is not a new answer
    IF p_deleted = 0 AND p_status = 2 AND IFNULL(p_old_status, 255) <> 2
        AND NOT EXISTS (SELECT 1 FROM `{ANSWERED_TABLE}`
                        WHERE `companyid` = v_company AND `usercallid` = p_usercallid) THEN
      INSERT INTO `{ANSWERED_TABLE}` (`companyid`, `usercallid`) VALUES (v_company, p_usercallid);
      CALL `callbridge_call_event`(18, p_company, p_usercallid, p_userid, p_direction,
        p_party_nr, p_party_desc, p_group, p_externalid, p_recording, p_origin);
    END IF;
    -- 19/21: closed (6) or killme (8) reached, or the row deleted before that. Who hung up
    -- is not in the tables: 21 carries cb_hangup_unknown (docs/mysql.md).
    IF (p_deleted = 1 AND IFNULL(p_old_status, 0) NOT IN (6, 8))
        OR (p_deleted = 0 AND p_status IN (6, 8) AND IFNULL(p_old_status, 0) NOT IN (6, 8)) THEN
      SET v_answered = (SELECT COUNT(*) FROM `{ANSWERED_TABLE}`
                        WHERE `companyid` = v_company AND `usercallid` = p_usercallid);
      DELETE FROM `{ANSWERED_TABLE}` WHERE `companyid` = v_company AND `usercallid` = p_usercallid;
      CALL `callbridge_call_event`(IF(v_answered > 0, 21, 19), p_company, p_usercallid,
        p_userid, p_direction, p_party_nr, p_party_desc, p_group, p_externalid, p_recording,
        p_origin);
    END IF;
  END IF;
END"""  # noqa: S608 - table-name constants only

_DEVICE = f"""CREATE PROCEDURE `callbridge_device`(
  IN p_ssn INT,
  IN p_company BIGINT,
  IN p_deviceid BIGINT,
  IN p_userid BIGINT,
  IN p_devicety INT,
  IN p_host {_T},
  IN p_descript {_T},
  IN p_origin {_T})
  MODIFIES SQL DATA
  COMMENT 'callbridge: events 1/2 from monitor_devices'
BEGIN
{_guard("callbridge_device")}
  IF p_deviceid IS NOT NULL THEN
    CALL `callbridge_emit`(p_ssn, JSON_OBJECT(
        'ssn_event', CAST(p_ssn AS CHAR),
        'company_id', CAST(p_company AS CHAR),
        'device_id', {_hex_id("p_deviceid")},
        'device_type', CAST(p_devicety AS CHAR),
        'device_host', {_v("p_host")},
        'device_name', {_v("p_descript")},
        'number', {_v("(SELECT `extension` FROM `users` WHERE `ID` = p_userid LIMIT 1)")},
        'user_id', {_hex_id("p_userid")}),
      p_origin);
  END IF;
END"""  # noqa: S608 - constants only


def _user_call_trigger(name: str, op: str) -> str:
    row = "OLD" if op == "DELETE" else "NEW"
    old_direction = "NULL" if op == "INSERT" else "OLD.`direction`"
    old_status = "NULL" if op == "INSERT" else "OLD.`status`"
    status = "NULL" if op == "DELETE" else "NEW.`status`"
    # The row's own flag only (reading other rows here could make the PBX's write wait);
    # once begun it stays, even if the PBX clears it as the call closes.
    recording = f"IFNULL({row}.`recording`, 0)"
    if op == "UPDATE":
        recording = "GREATEST(IFNULL(OLD.`recording`, 0), IFNULL(NEW.`recording`, 0))"
    return f"""CREATE TRIGGER `{name}` AFTER {op} ON `monitor_user_calls` FOR EACH ROW
BEGIN
{_guard(name)}
  CALL `callbridge_user_call`({1 if op == "DELETE" else 0}, {old_direction}, {old_status}, {status},
    {row}.`companyid`, {row}.`usercallid`, {row}.`userid`, {row}.`direction`, {row}.`party_nr`,
    {row}.`party_desc`, {row}.`group`, {row}.`externalid`, {recording},
    CONCAT('monitor_user_calls#', {row}.`ID`, ':{op.lower()}'));
END"""


def _device_trigger(name: str, op: str) -> str:
    row = "OLD" if op == "DELETE" else "NEW"
    ssn = 2 if op == "DELETE" else 1
    return f"""CREATE TRIGGER `{name}` AFTER {op} ON `monitor_devices` FOR EACH ROW
BEGIN
{_guard(name)}
  CALL `callbridge_device`({ssn}, {row}.`companyid`, {row}.`deviceid`, {row}.`userid`,
    {row}.`devicety`, {row}.`host`, {row}.`descript`,
    CONCAT('monitor_devices#', {row}.`ID`, ':{op.lower()}'));
END"""


def uninstall_statements() -> list[str]:
    """Drop our triggers and procedures (the outbox and its rows stay)."""
    return [f"DROP TRIGGER IF EXISTS `{name}`" for name in TRIGGERS] + [
        f"DROP PROCEDURE IF EXISTS `{name}`" for name in PROCEDURES
    ]


def trigger_statements(
    mode: TriggerMode | str,
    *,
    url: str | None = None,
    token: str | SecretStr | None = None,
    server_os: str = "posix",
    curl: str = DEFAULT_CURL,
) -> list[str]:
    """Every statement that installs the triggers (idempotent: drops ours first).

    ``url`` and ``token`` are required in sys_exec mode and validated, as is ``curl`` (the
    path the database server runs); UnsafeValue otherwise. ``server_os`` (``posix`` or
    ``windows``) is the database server's: how the curl command is detached.
    """
    mode = TriggerMode(mode)
    checked_url = checked_token = None
    if mode is TriggerMode.SYS_EXEC:
        if not url or token is None:
            raise UnsafeValue("sys_exec mode needs the ingress URL and the ingress token")
        checked_url = validate_url(url)
        checked_token = validate_token(token)
        validate_curl(curl)
        if server_os not in SERVER_OS:
            raise UnsafeValue(f"server OS must be one of {', '.join(SERVER_OS)}")
    # Stored programs keep the sql_mode they were created with: fix it, then put the
    # installer's back.
    statements = [
        "SET @callbridge_saved_sql_mode = @@SESSION.sql_mode",
        f"SET SESSION sql_mode = '{SQL_MODE}'",
    ]
    statements += _support_statements() + uninstall_statements()
    statements += [
        _emit_procedure(mode, checked_url, checked_token, server_os, curl),
        _CALL_EVENT,
        _USER_CALL,
        _DEVICE,
    ]
    for name, (table, op) in TRIGGERS.items():
        maker = _user_call_trigger if table == "monitor_user_calls" else _device_trigger
        statements.append(maker(name, op))
    statements.append("SET SESSION sql_mode = @callbridge_saved_sql_mode")
    return statements


def render_script(statements: list[str]) -> str:
    """A script for the ``mysql``/``mariadb`` client (compound statements need DELIMITER)."""
    out = ["-- generated by `callbridge mysql triggers` (see docs/mysql.md)", "DELIMITER //"]
    out += [f"{statement} //" for statement in statements]
    out.append("DELIMITER ;")
    return "\n\n".join(out) + "\n"


def apply_statements(conn: Any, statements: list[str]) -> None:
    """Run the statements one by one on a PyMySQL connection (no DELIMITER needed)."""
    with conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
