"""The script of reference app 2 (the car dealership): functions its dataflows call.

``script`` steps of ``cars.component.yaml`` call them with the step's items (dicts) and a
``context`` (``inputs``, ``record``, ``actor``); each returns the items that go on. They run
in the app's kernel (in a child process when a dataflow is called over REST).
"""

from appbook.server.errors import ValidationError


def normalise(items, context):
    """A new car as the fleet stores it: the VIN in capitals without spaces or dashes (what
    people type from a windscreen), the brand and model trimmed, the colour as its choice
    key, not archived and without a manager (the lot lists it until one is appointed)."""
    out = []
    for car in items:
        vin = car.get("vin") or ""
        colour = (car.get("colour") or "").strip().lower() or None
        out.append(
            {
                **car,
                "vin": vin.replace(" ", "").replace("-", "").upper(),
                "brand": (car.get("brand") or "").strip(),
                "model": (car.get("model") or "").strip(),
                "colour": colour,
                "manager": None,
                "archived": False,
            }
        )
    return out


def needs_manager(items):
    """Appointing needs a manager picked (the lookup after it refuses one that is gone)."""
    if any(car.get("manager") is None for car in items):
        raise ValidationError({"manager": ["is required"]})
    return items


def check_contract(items):
    """A contract needs its number and date: refused under those fields otherwise (the
    component leaves them optional, since cars on offer have neither)."""
    for car in items:
        errors = {
            name: ["is required"]
            for name in ("contract_number", "sold_on")
            if car.get(name) in (None, "")
        }
        if errors:
            raise ValidationError(errors)
    return items
