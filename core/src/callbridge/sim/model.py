"""The simulated company: users, their devices, and ring groups.

The simulator needs a directory for three reasons: to check the SOAP header (integration user
plus the MD5 hash of its password), to resolve the ``param1`` user a command acts for, and to
fill the ``identity`` of internal parties in events. Identifiers are kept as integers, as the
monitor tables store them, and formatted as 8-character hex strings only on the wire.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from pydantic import SecretStr

from ..voispeed.codes import DeviceType, RingMode
from ..voispeed.ids import normalize_id

#: Prefixes the document uses in front of a user's ``Name@domain`` (header and param1).
_LOGIN_PREFIXES = ("auth-", "calling-")


def md5_hex(password: str) -> str:
    """The MD5 hex digest the PBX stores and the SOAP header carries."""
    return hashlib.md5(password.encode(), usedforsecurity=False).hexdigest()


def _bare_login(login: str) -> str:
    """``auth-mario@acme`` and ``calling-mario@acme`` both become ``mario@acme``."""
    text = login.strip().lower()
    for prefix in _LOGIN_PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


@dataclass(frozen=True)
class User:
    """A PBX user. ``login`` is the ``auth-Name@domain`` form the SOAP header uses."""

    id: int
    name: str
    surname: str
    department: str
    extension: str
    company_id: int
    login: str
    #: MD5 hex of the password; None for users that cannot authenticate SOAP requests.
    password_md5: SecretStr | None = field(default=None, repr=False)

    @property
    def wire_id(self) -> str:
        """The user id as events carry it (``00000065``)."""
        return normalize_id(self.id)

    @property
    def identity(self) -> str:
        """``Name|Surname|Department|0|0``: how events describe this user to others."""
        return f"{self.name}|{self.surname}|{self.department}|0|0"

    def check_password(self, md5: str) -> bool:
        """True when ``md5`` is this user's password hash (case-insensitive hex)."""
        if self.password_md5 is None:
            return False
        return hmac.compare_digest(
            self.password_md5.get_secret_value().lower(), md5.strip().lower()
        )


@dataclass(frozen=True)
class Device:
    """A phone or client of a user; ``host`` is ``ip:port`` as events 1/2 carry it."""

    id: int
    user_id: int
    type: DeviceType
    host: str
    user_agent: str

    @property
    def wire_id(self) -> str:
        """The device id as events and SOAP carry it (``000012A0``)."""
        return normalize_id(self.id)


@dataclass(frozen=True)
class Group:
    """A ring group reachable at ``number``; ``members`` are extensions, in priority order."""

    id: int
    name: str
    number: str
    members: tuple[str, ...]
    ring_mode: RingMode = RingMode.ALL


class DirectoryError(ValueError):
    """A directory that contradicts itself (duplicate extension, unknown member, ...)."""


@dataclass
class Directory:
    """Users, devices and groups of one simulated PBX, with the look-ups the engine needs."""

    users: list[User] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    #: DIDs: a number from outside -> the extension or group number it reaches.
    dids: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse duplicates and dangling references, so a bad directory fails at load."""
        seen_ext: set[str] = set()
        seen_ids: set[int] = set()
        seen_logins: set[str] = set()
        for user in self.users:
            if user.id in seen_ids:
                raise DirectoryError(f"duplicate user id {user.id}")
            if user.extension in seen_ext:
                raise DirectoryError(f"duplicate extension {user.extension}")
            if _bare_login(user.login) in seen_logins:
                raise DirectoryError(f"duplicate login {user.login}")
            seen_ids.add(user.id)
            seen_ext.add(user.extension)
            seen_logins.add(_bare_login(user.login))
        device_ids: set[int] = set()
        for device in self.devices:
            if device.id in device_ids:
                raise DirectoryError(f"duplicate device id {device.id}")
            if device.user_id not in seen_ids:
                raise DirectoryError(f"device {device.wire_id} belongs to unknown user")
            device_ids.add(device.id)
        for group in self.groups:
            if group.number in seen_ext:
                raise DirectoryError(f"group {group.name} number {group.number} is an extension")
            for member in group.members:
                if member not in seen_ext:
                    raise DirectoryError(f"group {group.name}: unknown member {member}")
        numbers = seen_ext | {g.number for g in self.groups}
        for did, target in self.dids.items():
            if did in numbers or target not in numbers:
                raise DirectoryError(f"DID {did} -> {target}: not an extension or group")

    def add_user(self, user: User) -> None:
        """Add one user (e.g. the integration account from the settings)."""
        self.users.append(user)
        try:
            self.validate()
        except DirectoryError:
            self.users.pop()
            raise

    def user_by_extension(self, extension: str) -> User | None:
        """The user reachable at ``extension``."""
        return next((u for u in self.users if u.extension == extension.strip()), None)

    def user_by_id(self, user_id: int) -> User | None:
        """The user with this id."""
        return next((u for u in self.users if u.id == user_id), None)

    def user_by_login(self, login: str) -> User | None:
        """Resolve ``auth-Name@domain``, ``calling-Name@domain`` or ``Name@domain``."""
        bare = _bare_login(login)
        return next((u for u in self.users if _bare_login(u.login) == bare), None)

    def resolve_user(self, who: str) -> User | None:
        """A login in any of its forms, or an extension: what ``param1`` may carry."""
        return self.user_by_login(who) or self.user_by_extension(who)

    def group_by_number(self, number: str) -> Group | None:
        """The group reachable at ``number`` (or named ``number``)."""
        text = number.strip()
        return next((g for g in self.groups if text in (g.number, g.name)), None)

    def device(self, device_id: str | int) -> Device | None:
        """The device with this id (8-character form or integer)."""
        wanted = normalize_id(device_id)
        return next((d for d in self.devices if d.wire_id == wanted), None)

    def devices_of(self, user: User) -> list[Device]:
        """Every device of ``user``, first one is the default for new calls."""
        return [d for d in self.devices if d.user_id == user.id]


#: Password of every sample user of the default directory (documented in docs/simulator.md).
DEFAULT_PASSWORD = "callbridge"  # noqa: S105 - a documented sample credential


def default_directory(password: str = DEFAULT_PASSWORD, company_id: int = 1) -> Directory:
    """A small company, ACME: four agents in two groups, and an integration user.

    Everyone's password is ``callbridge``; the integration account is
    ``auth-callbridge@acme``. Extensions 201-204, groups 600 (Sales) and 601 (Support), the
    hunt group 602 (Hotline), and the DID 0612340601 to Support.
    """
    digest = SecretStr(md5_hex(password))
    people = [
        (0x65, "Mario", "Rossi", "Sales", "201", "mario"),
        (0x66, "Giulia", "Bianchi", "Sales", "202", "giulia"),
        (0x67, "Luca", "Verdi", "Support", "203", "luca"),
        (0x68, "Sara", "Neri", "Support", "204", "sara"),
        (0x69, "Callbridge", "Integration", "IT", "299", "callbridge"),
    ]
    users = [
        User(uid, name, surname, dept, ext, company_id, f"auth-{login}@acme", digest)
        for uid, name, surname, dept, ext, login in people
    ]
    devices: list[Device] = []
    for index, user in enumerate(users[:4]):
        devices.append(
            Device(
                0x12A0 + 2 * index,
                user.id,
                DeviceType.SIP_PHONE,
                f"10.0.0.{21 + index}:5060",
                "Yealink SIP-T46U 108.86.0.20",
            )
        )
        devices.append(
            Device(
                0x12A1 + 2 * index,
                user.id,
                DeviceType.GUI,
                f"10.0.1.{21 + index}:5062",
                "VOIspeed UCC 4.0",
            )
        )
    groups = [
        Group(1, "Sales", "600", ("201", "202"), RingMode.ALL),
        Group(2, "Support", "601", ("203", "204"), RingMode.ALL),
        # A hunt group: one member at a time (the engine's ``hunt_next``).
        Group(3, "Hotline", "602", ("203", "204"), RingMode.PRIORITY),
    ]
    # A DID reaching Support directly: 16's ``ext`` is the DID with ``ext_reading="dialled"``.
    dids = {"0612340601": "601"}
    return Directory(users=users, devices=devices, groups=groups, dids=dids)


#: The second simulated company's PBX company id (ACME, ``default_directory``, is 1).
SECOND_COMPANY_ID = 2


def second_company_directory(
    password: str = DEFAULT_PASSWORD, company_id: int = SECOND_COMPANY_ID
) -> Directory:
    """A second company on the same PBX, Globex: three agents, two groups, its own numbers.

    Numbers never overlap ACME's (extensions 301-303, groups 700 and 701, the DID
    0698760700 to Sales), so one directory holds both companies and every event carries
    the company of the user it is about. The integration account is
    ``auth-callbridge@globex`` (extension 399); everyone's password is ``callbridge``.
    """
    digest = SecretStr(md5_hex(password))
    people = [
        (0xC9, "Hank", "Scorpio", "Sales", "301", "hank"),
        (0xCA, "Homer", "Simpson", "Sales", "302", "homer"),
        (0xCB, "Frank", "Grimes", "Support", "303", "frank"),
        (0xCC, "Callbridge", "Integration", "IT", "399", "callbridge"),
    ]
    users = [
        User(uid, name, surname, dept, ext, company_id, f"auth-{login}@globex", digest)
        for uid, name, surname, dept, ext, login in people
    ]
    devices = [
        Device(
            0x13A0 + index,
            user.id,
            DeviceType.SIP_PHONE,
            f"10.2.0.{31 + index}:5060",
            "Snom D785 10.1.159.12",
        )
        for index, user in enumerate(users[:3])
    ]
    groups = [
        Group(11, "Globex Sales", "700", ("301", "302"), RingMode.ALL),
        Group(12, "Globex Support", "701", ("303",), RingMode.ALL),
    ]
    return Directory(users=users, devices=devices, groups=groups, dids={"0698760700": "700"})


def two_company_directory(password: str = DEFAULT_PASSWORD) -> Directory:
    """ACME (company 1, ``default_directory``) and Globex (company 2) on one simulated PBX."""
    first = default_directory(password)
    second = second_company_directory(password)
    return Directory(
        users=first.users + second.users,
        devices=first.devices + second.devices,
        groups=first.groups + second.groups,
        dids={**first.dids, **second.dids},
    )


def company_ids(directory: Directory) -> list[int]:
    """The PBX company ids the directory's users belong to, in order."""
    return sorted({user.company_id for user in directory.users})


def integration_login(directory: Directory, company_id: int) -> str | None:
    """The SOAP login of a company's integration account (``auth-callbridge@...``) for a
    company other than the first; None: the simulator's own (its settings' user)."""
    if company_id == 1:
        return None
    return next(
        (
            u.login
            for u in directory.users
            if u.company_id == company_id and u.login.startswith("auth-callbridge@")
        ),
        None,
    )
