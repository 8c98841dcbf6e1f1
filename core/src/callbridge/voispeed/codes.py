"""Every coded value of the VOIspeed integration document, defined once.

Names follow the document (``callable_user`` becomes ``CallableType.USER``) so that a reader
can go from a column or a SOAP field straight to the page that defines it. Nothing else in
callbridge may repeat these numbers.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class SsnEvent(IntEnum):
    """The ``ssn_event`` values the PBX sends to the callback URL."""

    DEVICE_LOGIN = 1
    DEVICE_LOGOUT = 2
    CALL_INCOMING = 16
    CALL_OUTGOING = 17
    CALL_ANSWERED = 18
    CALL_REJECTED = 19
    CALL_REMOTE_HANGUP = 20
    CALL_LOCAL_HANGUP = 21


#: Each ``SsnEvent`` by its decimal text, as the ``ssn_event`` parameter carries it.
_SSN_EVENT_BY_TEXT = {str(int(code)): code for code in SsnEvent}


def ssn_event_of(value: str | None) -> SsnEvent | None:
    """The ``SsnEvent`` an ``ssn_event`` parameter names exactly, or None (absent, unknown).

    Exact text only (``"16"``, not ``" 16"`` or ``"016"``): code that picks what to do by
    the code compares enum members rather than raw strings.
    """
    return _SSN_EVENT_BY_TEXT.get(value or "")


class CallableType(IntEnum):
    """``callingty``/``calledty``/``connectty``, ``call_request_*_type``, ``busy_type``."""

    USER = 0
    GROUP = 1
    GATEWAY = 2
    IVR = 3
    SERVICE = 4
    LCR = 5
    MESSAGES = 6
    DEVICE = 7
    WAN_USER = 8
    VOICEMAIL = 9
    VOICEMAIL_MANAGER = 10
    MEETING_ROOM = 11


class DeviceType(IntEnum):
    """``monitor_devices.devicety`` and the ``device_type`` event parameter."""

    UNKNOWN = 0
    GUI = 1
    SIP_PHONE = 2
    USB = 3
    DECT = 4
    MOBILE = 5
    VIDEO = 6


class CallStatus(IntEnum):
    """``monitor_calls.status`` (the whole call, ``com_*``)."""

    IDLE = 0
    INCOMING = 1
    CALLING = 2
    ACTIVE = 3
    DIVERTING = 4
    PICKING_UP = 5
    REJECTING = 6
    TERMINATING = 7
    TERMINATED = 8


class UserCallStatus(IntEnum):
    """``monitor_user_calls.status`` (one user's leg, ``call_status_*``)."""

    NONE = 0
    CONNECTING = 1
    ACTIVE = 2
    HOLD = 3
    VOICE_MAIL = 4
    PARKED = 5
    CLOSED = 6
    TRYING = 7
    KILLME = 8
    EARLY_CONNECTING = 9


class Direction(IntEnum):
    """``monitor_user_calls.direction``."""

    NONE = 0
    INCOMING = 1
    OUTGOING = 2


class PresenceStatus(IntEnum):
    """``avstatus`` and ``chstatus`` of monitor_users and monitor_gw_users."""

    UNKNOWN = 0
    UNREACHABLE = 1
    AVAILABLE = 2
    RINGING = 3
    BUSY = 4
    DND = 5
    SLEEPING = 6
    ABSENT = 7


class UserMode(IntEnum):
    """``monitor_users.mode`` and ``users.av_mode``/``chat_mode`` (divert only in users)."""

    NORMAL = 0
    DND = 1
    ABSENT = 2
    DIVERT = 3


class Media(IntEnum):
    """``monitor_calls.media``."""

    AUDIO_VIDEO = 0
    CHAT = 1


class GatewayType(IntEnum):
    """``monitor_gateways.type`` and ``crud_event_entity_subtype`` for gateways."""

    VOIP = 0
    WAN = 1
    ISDN = 2
    GSM = 3
    ANALOGIC = 4


class GatewayStatus(IntEnum):
    """``monitor_gateways.status``."""

    INACTIVE = 0
    ACTIVE = 1


class CrudAction(IntEnum):
    """``crud_event_action`` of the CRUDevent command."""

    NONE = 0
    CREATE = 1
    READ = 2
    UPDATE = 3
    DELETE = 4


class CrudEntityType(IntEnum):
    """``crud_event_entity_type`` of the CRUDevent command."""

    NONE = 0
    COMPANY = 1
    USER = 2
    GROUP = 3
    GATEWAY = 4
    IVR = 5
    ROUTING_RULE = 6
    TIMETABLE = 7
    DEPARTMENT = 8
    ROUTER = 9
    SERVICE = 10
    SETTINGS = 11
    VOICEMAIL = 12
    VOICEMAIL_MANAGER = 13
    SERVICE_MESSAGE = 14
    MEETING_ROOM = 15
    WAN_USER = 16


class RingMode(IntEnum):
    """``groups.ringmode``."""

    PRIORITY = 0
    ALL = 1
    CYCLIC = 2
    CYCLIC_SHIFT = 3
    CYCLIC_ADD = 4
    CYCLIC_SHIFT_ADD = 5
    ACD = 6


class CallAction(IntEnum):
    """``busy_act``/``unre_act``/``maxr_act`` of groups and ``ev*_act`` of users."""

    NONE = 0
    REJECT = 1
    VOCALBOX = 2
    PLAYBACK = 3
    TRANSFER = 4
    QUEUE = 5


class AudioType(IntEnum):
    """``opwaitmsg``/``busy_msg``/``unre_msg``/``maxr_msg`` of groups."""

    NONE = 0
    FILE = 1
    LINEIN = 2
    DYNAMIC = 3


class UserLevel(IntEnum):
    """``users.level``."""

    SUPER_ADMINISTRATOR = 1
    ADMINISTRATOR = 2
    NORMAL_USER = 5


class RecordingFlag(IntEnum):
    """``call_request_to_be_rec`` and the ``recording`` columns."""

    NO = 0
    YES = 1


class UserCaps(IntFlag):
    """``users.caps``: the user's permissions bit mask."""

    NONE = 1
    CHAT = 2
    FILE_XFER = 4
    CALL_RECORDING = 8
    DND = 16
    ABSENT = 32
    VOCALBOX = 64
    CALL_XFER = 128
    WHOCALLEDWHO = 256
    CLOSURES = 512
    DIVERT = 1024
