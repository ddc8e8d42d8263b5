"""ImportReferences: conversation references another bot collected, brought into the store (internal, admin scope)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from teams_proactive.bot.imports.importer import ImportItem, ReferenceImporter
from teams_proactive.connector.auth import current_caller
from teams_proactive.connector.schemas.references import ImportReferencesSchema, ImportReportSchema
from teams_proactive.connector.views.common import run, runtime

blp = Blueprint("references", __name__, url_prefix="/api/v1/references", description="Bring in existing references")


@blp.route("")
class References(MethodView):
    @blp.arguments(ImportReferencesSchema)
    @blp.response(200, ImportReportSchema)
    def post(self, body: dict[str, Any]) -> Any:
        """Import conversation references

        Brings in ConversationReference JSON that another bot or agent collected (botbuilder or the
        Microsoft 365 Agents SDK): one, a list, or {"references": [...]}. Each is sorted into its surface
        and answered imported, updated, or skipped with a reason; newer data wins; nothing else of the
        person changes. A key limited to a tenant imports only that tenant's references.
        """
        caller = current_caller("admin")
        importer = ReferenceImporter(
            runtime().store,
            tenant_id=caller.tenant_id,
            only_tenant=bool(caller.tenant_id),
            local_mode=runtime().settings.local_mode,
        )
        items = [ImportItem(f"[{index}]", document) for index, document in enumerate(body["references"])]
        return run(importer.run(items), timeout=300).as_json()
