"""Admin forms and widgets: people pick variants and type percentages; nobody types JSON.

Values are converted here (a percentage to thousandths, lines of text to a list, text to a
variant value of the flag's kind); what they mean is checked by the models' ``clean()`` and by the
services, with the engine's own words.
"""

from .actions import (
    AttributeForm,
    AttributeFormSet,
    EnvironmentChoiceField,
    EvaluateForm,
    FlagActionForm,
)
from .base import ExplainedModelForm
from .serve import PercentField, ServeField, ServeWidget
from .targeting import ConditionForm, PrerequisiteForm, RuleForm, ValuesField
from .variants import (
    FlagForm,
    FlagStateForm,
    VariantChoiceField,
    VariantForm,
    variant_choices,
    variant_label,
)

__all__ = [
    "AttributeForm",
    "AttributeFormSet",
    "ConditionForm",
    "EnvironmentChoiceField",
    "EvaluateForm",
    "ExplainedModelForm",
    "FlagActionForm",
    "FlagForm",
    "FlagStateForm",
    "PercentField",
    "PrerequisiteForm",
    "RuleForm",
    "ServeField",
    "ServeWidget",
    "ValuesField",
    "VariantChoiceField",
    "VariantForm",
    "variant_choices",
    "variant_label",
]
