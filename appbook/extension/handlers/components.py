"""``components`` and ``publications``: what is published, and publishing."""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...server.record_schema import record_schema
from ..base import AppbookHandler, BadRequest
from ..models import (
    ComponentDetail,
    ComponentList,
    Publication,
    PublicationList,
    PublishRequest,
    RollbackRequest,
)
from ..openapi import operation

NAME = r"(?P<name>[a-z][a-z0-9_]*)"


class ComponentsHandler(AppbookHandler):
    """The published components."""

    @web.authenticated
    @authorized
    @operation("List published components", response=ComponentList, tags=("components",))
    async def get(self) -> None:
        """Name, title and field names of each published component."""
        comps = await self.run(self.engine.registry.all)
        items = [
            {"name": c.name, "title": c.definition.title, "fields": list(c.definition.fields)}
            for c in sorted(comps.values(), key=lambda c: c.name)
        ]
        self.reply({"items": items})


class ComponentHandler(AppbookHandler):
    """One published component."""

    @web.authenticated
    @authorized
    @operation(
        "A component's definition and the JSON Schema of its records",
        response=ComponentDetail,
        tags=("components",),
    )
    async def get(self, name: str) -> None:
        """The definition as published and its record schema."""
        comp = await self.run(self.engine.registry.get, name)
        defn = comp.definition
        self.reply(
            {
                "name": defn.name,
                "title": defn.title,
                "definition": defn.snapshot(),
                "record_schema": record_schema(defn),
            }
        )


class PublicationsHandler(AppbookHandler):
    """The publication history, and publishing."""

    @web.authenticated
    @authorized
    @operation(
        "Publication history, newest first", response=PublicationList, tags=("publications",)
    )
    async def get(self) -> None:
        """Every publication."""
        rows = await self.run(self.engine.publications)
        self.reply({"items": [r.to_dict() for r in rows]})

    @web.authenticated
    @authorized
    @operation(
        "Publish definitions (YAML bundle or JSON); 200 with changed=false when nothing changed",
        body=PublishRequest,
        response=Publication,
        status=201,
        also=(200,),
        errors=(400, 403, 409, 413, 422, 503),
        tags=("publications",),
    )
    async def post(self) -> None:
        """Validate all definitions together and publish them (409 if it would lose data)."""
        request = self.json_body(PublishRequest)
        texts = dict(request.files or {})
        for i, definition in enumerate(request.definitions or []):
            # JSON is YAML: errors then point at lines of this pretty-printed text.
            texts[f"definitions[{i}].json"] = json.dumps(definition, indent=1)
        if not texts:
            raise BadRequest(
                "give 'files' (file name -> YAML text) or 'definitions' (JSON objects)"
            )
        result = await self.run(
            self.engine.publish_texts, texts, allow_destructive=request.allow_destructive
        )
        self.reply(result.to_dict(), 201 if result.changed else 200)


class RollbackHandler(AppbookHandler):
    """Return to an earlier publication's definitions."""

    @web.authenticated
    @authorized
    @operation(
        "Publish again publication N's definitions (data columns kept)",
        body=RollbackRequest,
        response=Publication,
        status=201,
        also=(200,),
        errors=(400, 403, 404, 409, 422, 503),
        tags=("publications",),
    )
    async def post(self, number: str) -> None:
        """Roll back to publication ``number``."""
        options = self.json_body(RollbackRequest) if self.request.body else RollbackRequest()
        result = await self.run(
            self.engine.rollback, int(number), allow_destructive=options.allow_destructive
        )
        self.reply(result.to_dict(), 201 if result.changed else 200)


routes = [
    (r"/appbook/api/components", ComponentsHandler),
    (rf"/appbook/api/components/{NAME}", ComponentHandler),
    (r"/appbook/api/publications", PublicationsHandler),
    (r"/appbook/api/publications/(?P<number>[0-9]+)/rollback", RollbackHandler),
]
