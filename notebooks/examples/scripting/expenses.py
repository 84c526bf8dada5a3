"""The script of reference app 3 (expense claims): the functions its pages call.

Each runs in the app's kernel with a ``context`` (see the README, "Component scripts"):
``on_load`` when a page shows a record, ``on_change`` when the user changes a field,
``before_save`` before a save (errors added refuse it), ``after_save`` after it, and the
functions named by ``call:`` actions (``approve``, ``mark_approved``). The hooks serve
every page of the component; ``context.page`` says which one is calling.
"""

import datetime as dt

LIMITS = {"meals": 200, "travel": 3000, "equipment": 2000, "other": 500}
RECEIPT_FROM = 50  # claims from this amount on need a receipt number


def on_load(context):
    """Defaults on a new claim; the form arranged for the values shown."""
    if context.page != "edit":
        return
    if context.record.is_new:
        context.form.get("spent_on").set_value(dt.date.today())
        context.form.get("currency").set_value("EUR")
        context.form.get("submitted_by").set_value(context.user.name)
    arrange(context)


def on_change(context, field):
    """Re-arrange the form and check the values as the user types."""
    if context.page == "edit":
        arrange(context)
        check(context)


def before_save(context):
    """The same checks once more: an error added here refuses the save."""
    if context.page == "edit":
        check(context)


def after_save(context):
    """Say so in the app's log (makers see it in the Log panel, the server in its log)."""
    context.logger.info("claim %s saved by %s", context.record.id, context.user.name)
    if context.page == "edit":
        arrange(context)  # a new claim is a saved one now: it may be approved


def approve(context):
    """The "Approve…" button: the approval dialog over this claim."""
    context.dialog("expenses", "approve", context.record.id, on_close=approval_closed)


def approval_closed(context):
    """The dialog closed: show what it saved."""
    context.commands.refresh()


def mark_approved(context):
    """The dialog's "Approve" button, before its save."""
    context.form.get("status").set_value("approved")
    context.logger.info("claim %s approved by %s", context.record.id, context.user.name)


def arrange(context):
    """Hotel nights for travel only; a receipt number from RECEIPT_FROM on."""
    record = context.record
    context.controls["nights"].visible = record["category"] == "travel"
    needs_receipt = (record["amount"] or 0) >= RECEIPT_FROM
    context.controls["receipt_number"].disabled = not needs_receipt
    context.controls["receipt_number"].required = needs_receipt
    context.controls["approve"].visible = not record.is_new and record["status"] != "approved"


def check(context):
    """An amount over its category's limit, a date in the future: errors under the field."""
    record = context.record
    amount, limit = record["amount"], LIMITS.get(record["category"])
    field = context.form.get("amount")
    field.clear_error()
    if amount is not None and limit is not None and amount > limit:
        field.add_error(f"{record['category']} claims are limited to {limit}")
    date = context.form.get("spent_on")
    date.clear_error()
    if record["spent_on"] is not None and record["spent_on"] > dt.date.today():
        date.add_error("cannot be in the future")
