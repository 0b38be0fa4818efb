"""Early warnings (预警): the bureau's warnings about enterprises, hazard units and forest zones (docs/warnings.md).

A warning is proposed (by a rule, a risk grade or a person), verified or rejected by a duty officer
(研判), issued, adjusted and lifted (Emergency Response Law art. 63, 64, 70). `WarningDesk` is the
only writer; each step is one transaction on ``alerts.db`` (warning, audit, published document,
notifications), then published on MQTT and as a GB/T 35965.1 / CAP 1.2 document.

The dynamic risk grade of enterprises and hazard units (docs/risk.md): `assess` grades them from
inherent risk, open alarms, data quality and registered operating states (`OperatingStates`);
`RiskMonitor` runs it on the clock and proposes warnings through the desk.
"""

from earlywarning.cap import cap_document, cap_xml
from earlywarning.capcheck import problems, xml_problems
from earlywarning.desk import WarningChange, WarningDesk
from earlywarning.drafting import Proposal, SubjectRef
from earlywarning.model import (FINAL_STATES, IN_FORCE_STATES, OPEN_STATES, Area, EarlyWarning, Evidence, HistoryEntry,
                                Origin, RiskGrade, Subject, SubjectKind, WarningEvent, WarningState)
from earlywarning.notices import Notice
from earlywarning.operating import (Commitment, CommitmentDraft, Devices, EntryConflict, EntryNotFound, InvalidEntry,
                                    OperatingEntry, OperatingError, OperatingStates, OperationDraft)
from earlywarning.publish import WARNINGS_TOPIC
from earlywarning.risk import (GRADE_COLOUR, AlarmRecord, Assessment, DataQuality, Factor, FactorGroup, GradeChange,
                               RiskBoard, SiteRisk, assess)
from earlywarning.riskmonitor import RiskMonitor, RiskTick
from earlywarning.states import InvalidWarning, NotAllowed, WarningError, WarningNotFound
from earlywarning.store import Publication
from foundation.warningspec import WarningLevel

__all__ = ["FINAL_STATES", "IN_FORCE_STATES", "OPEN_STATES", "WARNINGS_TOPIC", "Area", "EarlyWarning", "Evidence",
           "HistoryEntry", "InvalidWarning", "NotAllowed", "Notice", "Origin", "Proposal", "Publication", "RiskGrade",
           "Subject", "SubjectKind", "SubjectRef", "WarningChange", "WarningDesk", "WarningError", "WarningEvent",
           "WarningLevel", "WarningNotFound", "WarningState", "cap_document", "cap_xml", "problems", "xml_problems",
           # the dynamic risk grade (docs/risk.md)
           "GRADE_COLOUR", "AlarmRecord", "Assessment", "Commitment", "CommitmentDraft", "DataQuality", "Devices",
           "EntryConflict", "EntryNotFound", "Factor", "FactorGroup", "GradeChange", "InvalidEntry", "OperatingEntry",
           "OperatingError", "OperatingStates", "OperationDraft", "RiskBoard", "RiskMonitor", "RiskTick", "SiteRisk",
           "assess"]
