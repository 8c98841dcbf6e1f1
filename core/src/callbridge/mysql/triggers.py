"""SQL that turns the PBX's writes to its monitor tables into callbridge events.

Two modes, one mechanism. Triggers on ``monitor_user_calls`` and ``monitor_devices`` call small
stored procedures that insert one row per event into ``callbridge_outbox``, in the same
transaction as the PBX's write (so an event exists exactly when the PBX's change commits):

* ``outbox`` (recommended): nothing else. ``MysqlSource`` reads the outbox.
* ``sys_exec`` (sites that already run the vendor's ``lib_mysqludf_sys`` UDF): after the insert
  the procedure runs ``curl "<url>?outbox_id=<id>&token=<token>"`` through ``sys_exec``. The
  command is built only from the URL and token, both validated *here* against a strict
  character set, and the row id, an integer: no PBX-supplied text (caller numbers, names) can
  reach the shell. The vendor's own trigger concatenates those values into the command line,
  which lets anyone who can set a caller name run commands as the database server.

How row changes map to events (``docs/mysql.md`` has the table and its limits):

* user call gets direction 1/2 (insert, or update from 0)  -> 16 incoming / 17 outgoing
* status becomes 2 (active) for the first time              -> 18 answered
* status becomes 6 (closed) or 8 (killme), or the row is deleted before that:
  never active -> 19 (rejected/missed); was active -> 21 (closed; the tables do not say who
  hung up, so 20 is never produced)
* device row inserted -> 1 (login); deleted -> 2 (logout)

Identifiers go out as the document shows them: ``LPAD(HEX(id), 8, '0')``. The event
parameters are built with ``JSON_OBJECT``, which escapes any content, so quotes, newlines and
backslashes in a caller's name are data, never syntax.

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
#: Seconds curl may take in sys_exec mode: the PBX's write waits for it.
CURL_MAX_TIME = 3

#: URL characters accepted in sys_exec mode: none has a meaning to sh or cmd.exe inside
#: double quotes, to curl's URL globbing, or to a SQL string literal.
_URL_CHARS = re.compile(r"[A-Za-z0-9._~:/-]+")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,256}")


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


def _support_statements() -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS `{OUTBOX_TABLE}` (
  `id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  `created_at` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  `ssn_event` SMALLINT UNSIGNED NOT NULL,
  `params` TEXT NOT NULL COMMENT 'JSON object: the event parameters as the document names them',
  `origin` VARCHAR(64) NOT NULL DEFAULT '' COMMENT 'table#ID of the row change, for debugging',
  `consumed_at` DATETIME(6) NULL DEFAULT NULL COMMENT 'set by the source in mark mode',
  PRIMARY KEY (`id`),
  KEY `ix_consumed` (`consumed_at`, `id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
        f"""CREATE TABLE IF NOT EXISTS `{ANSWERED_TABLE}` (
  `companyid` INT UNSIGNED NOT NULL,
  `usercallid` INT UNSIGNED NOT NULL,
  `at` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (`companyid`, `usercallid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    ]


def _emit_procedure(mode: TriggerMode, url: str | None, token: str | None) -> str:
    notify = ""
    declare = ""
    if mode is TriggerMode.SYS_EXEC:
        assert url is not None
        assert token is not None
        # The shell sees: curl -fsS -g -m 3 "<url>?outbox_id=<integer>&token=<token>"
        # The double quotes keep & and ? from sh and cmd.exe; nothing inside can expand.
        prefix = f'curl -fsS -g -m {CURL_MAX_TIME} "{url}?outbox_id='
        suffix = f'&token={token}"'
        declare = "\n  DECLARE v_rc INT DEFAULT 0;"
        notify = (
            f"\n  SET v_rc = sys_exec(CONCAT({quote_literal(prefix)}, "
            f"CAST(LAST_INSERT_ID() AS CHAR), {quote_literal(suffix)}));"
        )
    # Only constants and the validated URL/token (quoted by quote_literal) go in here.
    return f"""CREATE PROCEDURE `callbridge_emit`(
  IN p_ssn SMALLINT UNSIGNED,
  IN p_params TEXT CHARACTER SET utf8mb4,
  IN p_origin VARCHAR(64) CHARACTER SET utf8mb4)
  MODIFIES SQL DATA
  COMMENT 'callbridge: one outbox row per event (mode {mode.value})'
BEGIN{declare}
  INSERT INTO `{OUTBOX_TABLE}` (`ssn_event`, `params`, `origin`)
    VALUES (p_ssn, p_params, p_origin);{notify}
END"""  # noqa: S608


_CALL_EVENT = """CREATE PROCEDURE `callbridge_call_event`(
  IN p_ssn SMALLINT UNSIGNED,
  IN p_company INT UNSIGNED,
  IN p_usercallid INT UNSIGNED,
  IN p_userid INT UNSIGNED,
  IN p_direction TINYINT,
  IN p_party_nr VARCHAR(255) CHARACTER SET utf8mb4,
  IN p_party_desc VARCHAR(255) CHARACTER SET utf8mb4,
  IN p_group VARCHAR(255) CHARACTER SET utf8mb4,
  IN p_externalid VARCHAR(255) CHARACTER SET utf8mb4,
  IN p_origin VARCHAR(64) CHARACTER SET utf8mb4)
  MODIFIES SQL DATA
  COMMENT 'callbridge: build the parameters of events 16-21'
BEGIN
  DECLARE v_user_ext VARCHAR(255) CHARACTER SET utf8mb4;
  DECLARE v_number VARCHAR(255) CHARACTER SET utf8mb4;
  DECLARE v_ext VARCHAR(255) CHARACTER SET utf8mb4;
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
      'sender_id', LPAD(HEX(p_userid), 8, '0'),
      'sender_type', '0',
      'call_id', LPAD(HEX(p_usercallid), 8, '0'),
      'ext_id', NULLIF(p_externalid, ''),
      'number', v_number,
      'ext', v_ext,
      'identity', NULLIF(p_party_desc, ''),
      'group', NULLIF(p_group, ''),
      'direction', CAST(p_direction AS CHAR),
      'user_id', LPAD(HEX(p_userid), 8, '0')),
    p_origin);
END"""

_USER_CALL = f"""CREATE PROCEDURE `callbridge_user_call`(
  IN p_deleted TINYINT,
  IN p_old_direction TINYINT,
  IN p_old_status TINYINT UNSIGNED,
  IN p_status TINYINT UNSIGNED,
  IN p_company INT UNSIGNED,
  IN p_usercallid INT UNSIGNED,
  IN p_userid INT UNSIGNED,
  IN p_direction TINYINT,
  IN p_party_nr VARCHAR(255) CHARACTER SET utf8mb4,
  IN p_party_desc VARCHAR(255) CHARACTER SET utf8mb4,
  IN p_group VARCHAR(255) CHARACTER SET utf8mb4,
  IN p_externalid VARCHAR(255) CHARACTER SET utf8mb4,
  IN p_origin VARCHAR(64) CHARACTER SET utf8mb4)
  MODIFIES SQL DATA
  COMMENT 'callbridge: map a monitor_user_calls change to events 16-21'
BEGIN
  DECLARE v_company INT UNSIGNED DEFAULT IFNULL(p_company, 0);
  DECLARE v_answered INT DEFAULT 0;
  IF p_direction IN (1, 2) AND p_usercallid IS NOT NULL THEN
    -- 16/17: the direction becomes known (insert, or an update from no_direction)
    IF p_deleted = 0 AND IFNULL(p_old_direction, 0) NOT IN (1, 2) THEN
      CALL `callbridge_call_event`(IF(p_direction = 1, 16, 17), p_company, p_usercallid,
        p_userid, p_direction, p_party_nr, p_party_desc, p_group, p_externalid, p_origin);
    END IF;
    -- 18: active (2) for the first time; back from hold is not a new answer
    IF p_deleted = 0 AND p_status = 2 AND IFNULL(p_old_status, 255) <> 2
        AND NOT EXISTS (SELECT 1 FROM `{ANSWERED_TABLE}`
                        WHERE `companyid` = v_company AND `usercallid` = p_usercallid) THEN
      INSERT INTO `{ANSWERED_TABLE}` (`companyid`, `usercallid`) VALUES (v_company, p_usercallid);
      CALL `callbridge_call_event`(18, p_company, p_usercallid, p_userid, p_direction,
        p_party_nr, p_party_desc, p_group, p_externalid, p_origin);
    END IF;
    -- 19/21: closed (6) or killme (8) reached, or the row deleted before that
    IF (p_deleted = 1 AND IFNULL(p_old_status, 0) NOT IN (6, 8))
        OR (p_deleted = 0 AND p_status IN (6, 8) AND IFNULL(p_old_status, 0) NOT IN (6, 8)) THEN
      SET v_answered = (SELECT COUNT(*) FROM `{ANSWERED_TABLE}`
                        WHERE `companyid` = v_company AND `usercallid` = p_usercallid);
      DELETE FROM `{ANSWERED_TABLE}` WHERE `companyid` = v_company AND `usercallid` = p_usercallid;
      CALL `callbridge_call_event`(IF(v_answered > 0, 21, 19), p_company, p_usercallid,
        p_userid, p_direction, p_party_nr, p_party_desc, p_group, p_externalid, p_origin);
    END IF;
  END IF;
END"""  # noqa: S608 - table-name constants only

_DEVICE = """CREATE PROCEDURE `callbridge_device`(
  IN p_ssn SMALLINT UNSIGNED,
  IN p_company INT UNSIGNED,
  IN p_deviceid INT UNSIGNED,
  IN p_userid INT UNSIGNED,
  IN p_devicety TINYINT UNSIGNED,
  IN p_host VARCHAR(255) CHARACTER SET utf8mb4,
  IN p_descript VARCHAR(255) CHARACTER SET utf8mb4,
  IN p_origin VARCHAR(64) CHARACTER SET utf8mb4)
  MODIFIES SQL DATA
  COMMENT 'callbridge: events 1/2 from monitor_devices'
BEGIN
  IF p_deviceid IS NOT NULL THEN
    CALL `callbridge_emit`(p_ssn, JSON_OBJECT(
        'ssn_event', CAST(p_ssn AS CHAR),
        'company_id', CAST(p_company AS CHAR),
        'device_id', LPAD(HEX(p_deviceid), 8, '0'),
        'device_type', CAST(p_devicety AS CHAR),
        'device_host', NULLIF(p_host, ''),
        'device_name', NULLIF(p_descript, ''),
        'number', (SELECT `extension` FROM `users` WHERE `ID` = p_userid LIMIT 1),
        'user_id', LPAD(HEX(p_userid), 8, '0')),
      p_origin);
  END IF;
END"""


def _user_call_trigger(name: str, op: str) -> str:
    row = "OLD" if op == "DELETE" else "NEW"
    old_direction = "NULL" if op == "INSERT" else "OLD.`direction`"
    old_status = "NULL" if op == "INSERT" else "OLD.`status`"
    status = "NULL" if op == "DELETE" else "NEW.`status`"
    return f"""CREATE TRIGGER `{name}` AFTER {op} ON `monitor_user_calls` FOR EACH ROW
  CALL `callbridge_user_call`({1 if op == "DELETE" else 0}, {old_direction}, {old_status}, {status},
    {row}.`companyid`, {row}.`usercallid`, {row}.`userid`, {row}.`direction`, {row}.`party_nr`,
    {row}.`party_desc`, {row}.`group`, {row}.`externalid`,
    CONCAT('monitor_user_calls#', {row}.`ID`, ':{op.lower()}'))"""


def _device_trigger(name: str, op: str) -> str:
    row = "OLD" if op == "DELETE" else "NEW"
    ssn = 2 if op == "DELETE" else 1
    return f"""CREATE TRIGGER `{name}` AFTER {op} ON `monitor_devices` FOR EACH ROW
  CALL `callbridge_device`({ssn}, {row}.`companyid`, {row}.`deviceid`, {row}.`userid`,
    {row}.`devicety`, {row}.`host`, {row}.`descript`,
    CONCAT('monitor_devices#', {row}.`ID`, ':{op.lower()}'))"""


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
) -> list[str]:
    """Every statement that installs the triggers (idempotent: drops ours first).

    ``url`` and ``token`` are required in sys_exec mode and validated; UnsafeValue otherwise.
    """
    mode = TriggerMode(mode)
    checked_url = checked_token = None
    if mode is TriggerMode.SYS_EXEC:
        if not url or token is None:
            raise UnsafeValue("sys_exec mode needs the ingress URL and the ingress token")
        checked_url = validate_url(url)
        checked_token = validate_token(token)
    statements = _support_statements() + uninstall_statements()
    statements += [
        _emit_procedure(mode, checked_url, checked_token),
        _CALL_EVENT,
        _USER_CALL,
        _DEVICE,
    ]
    for name, (table, op) in TRIGGERS.items():
        maker = _user_call_trigger if table == "monitor_user_calls" else _device_trigger
        statements.append(maker(name, op))
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
