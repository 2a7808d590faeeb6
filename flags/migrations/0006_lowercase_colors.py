"""Environment and tag colours in lower case, as they are stored from now on.

The admin's colour picker sends lower case, so a colour stored as ``#22C55E`` changed whenever its
form was saved unchanged. Rows are updated in bulk: this is a change of spelling, not an edit, so
it writes no history row and moves no ruleset version (colours are not in rulesets); existing
history rows keep the spelling they recorded.
"""

from typing import Any

from django.db import migrations
from django.db.models.functions import Lower


def lowercase_colors(apps: Any, schema_editor: Any) -> None:
    for model_name in ("Environment", "Tag"):
        model = apps.get_model("flags", model_name)
        model.objects.filter(color__regex=r"[A-F]").update(color=Lower("color"))


class Migration(migrations.Migration):
    dependencies = [("flags", "0005_change_reasons")]

    # The original spelling is not kept: going back leaves colours in lower case.
    operations = [migrations.RunPython(lowercase_colors, migrations.RunPython.noop)]
