"""``ReferenceField``: a reference field as a searchable drop-down of the target's records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets as widgets
from traitlets import observe

from ....server.definitions.models import FieldDef
from ....server.errors import NotFound
from ._common import InputControl, select_value

if TYPE_CHECKING:
    from ....server.engine import Appbook

SEARCH_LIMIT = 50


class ReferenceField(InputControl):
    """Records of the field's ``to`` component in a ``Dropdown``, filtered by a search box.

    Each record is labelled by the first string field of that component (``#id`` when it
    has none or it is empty). Options load through ``app``; typing in :attr:`search` keeps
    the first :data:`SEARCH_LIMIT` records whose label contains the text. The selected
    record always stays among the options. Without ``app`` the control is a text input
    that takes a record id.
    """

    default_field: ClassVar[FieldDef] = FieldDef(type="reference")

    def __init__(
        self,
        field: FieldDef | None = None,
        *,
        name: str = "",
        app: Appbook | None = None,
        **kwargs: Any,
    ) -> None:
        spec = field or self.default_field
        if app is not None and not spec.to:
            raise ValueError("a reference control with an app needs a field with `to`")
        self.app = app
        self.search: widgets.Text | None = None
        super().__init__(spec, name=name, **kwargs)
        if self.search is not None:
            self.arrange(widgets.HBox([self.search, self.input]))

    @property
    def label_field(self) -> str | None:
        """The field that labels the target's records (its first string field), if any."""
        if self.app is None or not self.field.to:
            return None
        fields = self.app[self.field.to].definition.stored_fields()
        return next((n for n, f in fields.items() if f.type == "string"), None)

    def make_input(self) -> widgets.DOMWidget:
        """A drop-down with a search box (with an app), else a text input for the id."""
        if self.app is None:
            text = widgets.Text(continuous_update=False)
            self.watch(text)
            return text
        self.search = widgets.Text(placeholder="Search…", continuous_update=False)
        self.search.observe(lambda _: self.refresh(), "value")
        self._label = self.label_field
        dropdown = widgets.Dropdown(options=self._options(""), index=None)
        self.watch(dropdown)
        return dropdown

    def refresh(self) -> None:
        """Reload the options (after records changed, or the search text did)."""
        if self.app is None or self.search is None:
            return
        self._writing = True
        try:
            self.input.options = self._options(self.search.value)
            select_value(self.input, self.value)
        finally:
            self._writing = False

    def write_input(self, value: Any) -> None:
        """Select record ``value`` (added to the options if the search left it out)."""
        if self.app is None:
            super().write_input(value)
            return
        if isinstance(value, int) and value not in [v for _l, v in self.input.options]:
            self.input.options = self._options(self.search.value if self.search else "", value)
        select_value(self.input, value)

    def _options(self, text: str, keep: Any = None) -> list[tuple[str, Any]]:
        assert self.app is not None and self.field.to
        handle, label = self.app[self.field.to], self._label
        text = text.strip()
        where: dict[str, Any] | None = None
        if text and label:
            where = {label: {"contains": text}}
        elif text:  # no label to search: the text may be an id
            where = {"id": int(text) if text.isdigit() else {"in": []}}
        records = handle.query(
            where=where,
            order_by=[label] if label else ["id"],
            limit=SEARCH_LIMIT,
            fields=[label] if label else ["id"],
        )
        pairs = [(_label_of(r, label), r["id"]) for r in records]
        keep = self.value if keep is None else keep
        if isinstance(keep, int) and keep not in [v for _l, v in pairs]:
            pairs.insert(0, (self._label_for(keep), keep))
        return [("", None), *pairs] if not self.required else pairs

    def _label_for(self, record_id: int) -> str:
        assert self.app is not None and self.field.to
        try:
            record = self.app[self.field.to].get(record_id)
        except NotFound:
            return f"#{record_id} (not found)"
        return _label_of(record, self._label)

    @observe("required")
    def _required_changed(self, change: dict[str, Any]) -> None:
        if hasattr(self, "input"):
            self.refresh()

    @observe("disabled")
    def _disable_search(self, change: dict[str, Any]) -> None:
        search = getattr(self, "search", None)
        if search is not None:
            search.disabled = self.disabled

    @observe("placeholder")
    def _search_placeholder(self, change: dict[str, Any]) -> None:
        search = getattr(self, "search", None)
        if search is not None:
            search.placeholder = self.placeholder or "Search…"


def _label_of(record: dict[str, Any], label: str | None) -> str:
    text = record.get(label) if label else None
    return str(text) if text else f"#{record['id']}"
