"""Output steps: writes in the run's transaction, what the caller gets back, and what
happens after the commit. Each passes items on, so later steps can read them."""

from __future__ import annotations

from typing import Any

from ..errors import NotFound, ValidationError
from .context import Chunk, Chunks, Item, StepCall
from .inputs import as_id


def _values(call: StepCall, item: Item) -> dict[str, Any]:
    """The field values of an item for the step's component: its mapping, else the item's
    own values of the component's fields."""
    fields = call.config.fields
    if fields is not None:
        return {name: call.eval(text, item=item) for name, text in fields.items()}
    stored = call.flow.state.app.records.registry.get(call.component).definition.stored_fields()
    return {k: v for k, v in item.items() if k in stored}


def _target(call: StepCall, item: Item, values: dict[str, Any]) -> int:
    """The id of the record an item updates: ``id``, else by ``key``, else ``item.id``."""
    config = call.config
    if config.id is not None:
        return as_id(call.eval(config.id, item=item), "id")
    if config.key is not None:
        value = values.get(config.key, item.get(config.key))
        page = call.flow.state.writer.query(call.component, where={config.key: value}, limit=2)
        if not page.items:
            raise NotFound(f"no {call.component} record with {config.key} {value!r}")
        if len(page.items) > 1:
            raise ValidationError({config.key: [f"{value!r} matches more than one record"]})
        return int(page.items[0]["id"])
    return as_id(item.get("id"), "id")


def create(call: StepCall) -> Chunks:
    """Create a record per item; the created records go on."""
    writer = call.flow.state.writer
    for _, items in call.items():
        yield [writer.create(call.component, _values(call, item)) for item in items]


def update(call: StepCall) -> Chunks:
    """Update (or, where ``mark_for_deletion`` holds, delete) the record of each item."""
    writer, doomed = call.flow.state.writer, call.config.mark_for_deletion
    for _, items in call.items():
        out: Chunk = []
        for item in items:
            values = _values(call, item)
            record_id = _target(call, item, values)
            if doomed is not None and call.eval(doomed, item=item):
                writer.delete(call.component, record_id)
                out.append({"id": record_id, "deleted": True})
            else:
                out.append(writer.update(call.component, record_id, values))
        yield out


def delete(call: StepCall) -> Chunks:
    """Delete the record of each item; the items go on."""
    writer = call.flow.state.writer
    for chunk, items in call.items():
        for item in items:
            writer.delete(call.component, as_id(call.eval(call.config.id, item=item), "id"))
        yield chunk


def deferred_update(call: StepCall) -> Chunks:
    """Queue each item's update for the next ``apply_deferred``; the items go on."""
    state = call.flow.state
    queue = state.deferred.setdefault(call.component, [])
    for chunk, items in call.items():
        for item in items:
            values = _values(call, item)
            queue.append((_target(call, item, values), values))
        state.peak_deferred = max(state.peak_deferred, sum(map(len, state.deferred.values())))
        yield chunk


def apply_deferred(call: StepCall) -> Chunks:
    """Write the queued updates in batches of ``chunk_size`` as each chunk passes."""
    for chunk, _ in call.items():
        flush(call.flow.state, call.config.chunk_size)
        yield chunk
    flush(call.flow.state, call.config.chunk_size)


def flush(state: Any, size: int) -> None:
    """Write every queued deferred update, ``size`` records per batch."""
    for component, queue in state.deferred.items():
        for start in range(0, len(queue), size):
            state.writer.update_many(component, queue[start : start + size])
        queue.clear()


def respond(call: StepCall) -> Chunks:
    """Set what the caller receives: ``value`` over the items, else the items."""
    items = call.all_items()
    text = call.config.value
    call.flow.response = items if text is None else call.eval(text, items=items)
    call.flow.responded = True
    yield items


def form_action(call: StepCall) -> Chunks:
    """Ask the calling page to open a page, a dialog or a file, or to refresh."""
    items = call.all_items()
    config = call.config
    names = {"items": items, "item": items[0] if items else None}
    action: dict[str, Any] = {"action": config.action}
    if config.page is not None:
        action["page"] = config.page
    if config.params:
        action["params"] = {k: call.eval(v, **names) for k, v in config.params.items()}
    if config.file is not None:
        action["file"] = call.eval(config.file, **names)
    if config.export is not None:
        action["export"] = config.export  # the stored file's id is filled in after the commit
    call.flow.state.actions.append(action)
    yield items


def run_workflow(call: StepCall) -> Chunks:
    """Start the workflow for each item once the whole run has committed (a rolled-back
    run starts nothing)."""
    state, config = call.flow.state, call.config
    for chunk, items in call.items():
        for item in items:
            record_id = (
                as_id(call.eval(config.record_id, item=item), "record_id")
                if config.record_id is not None
                else item.get("id")
            )
            inputs = {k: call.eval(v, item=item) for k, v in config.inputs.items()}
            state.writer.after_commit.append(
                _starter(state.app, call.component, config.workflow, record_id, inputs)
            )
        yield chunk


def _starter(app: Any, component: str, workflow: str, record_id: Any, inputs: Any) -> Any:
    return lambda: app.runs.start(component, workflow, record_id=record_id, inputs=inputs)


def render_template(call: StepCall) -> Chunks:
    """The template rendered (sandboxed) over all items, or over each item: HTML under
    ``into``, or (``to: pdf``) PDFs stored after the commit (:mod:`.pdf`)."""
    from ..expressions import render

    config = call.config
    if config.to == "pdf":
        from .pdf import render_pdfs

        yield from render_pdfs(call)
        return
    if not config.per_item:
        every = call.all_items()
        yield [{config.into: render(config.template, call.flow.names(items=every), html=True)}]
        return
    for _, items in call.items():
        yield [
            {**item, config.into: render(config.template, call.flow.names(item=item), html=True)}
            for item in items
        ]
