"""A fake Hostwinds Cloud API on loopback, following external-apis.md §1.

One `POST /cloud/api.php` taking form fields, dispatching on `action`, always answering HTTP 200
with Hostwinds' envelopes: `{"success": ...}` for reads, a list of `{"result": ...}` objects for
mutations and errors. It keeps instances that build for a few polls before turning active, an IP
pool, PTR records, and the API key's IPv4 allow-list (a request from an unlisted address gets
"Not Authorized!"). Tests can inject failures (`fail_next`) and act as staff in the portal
(`attach_ip`).

    with FakeHostwinds(api_key="k") as fake:
        client = HostwindsProvider("k", api_url=fake.url, min_interval=0)
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

PATH = "/cloud/api.php"

Reply = list[dict[str, str]] | dict[str, Any]


@dataclass
class Instance:
    serviceid: str
    srvrname: str
    template: str
    rid: str
    location_id: str
    main_ip: str
    polls_until_active: int
    keys: list[str]
    user_data: str | None
    status: str = "active"  # billing status: the service exists
    vm_state: str = "building"
    task_state: str | None = "spawning"
    secondary_ips: list[str] = field(default_factory=list)
    ptr: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "serviceid": self.serviceid,
            "userid": "4242",
            "location_id": self.location_id,
            "server_uuid": f"uuid-{self.serviceid}",
            "main_ip": self.main_ip if self.vm_state != "building" else "",
            "private_ip": None,
            "ips": [self.main_ip, *self.secondary_ips] if self.vm_state != "building" else None,
            "ip_v6": None,
            "srvrname": self.srvrname,
            "hostname": f"hwsrv-{self.serviceid}.hostwindsdns.com",
            "template_uuid": self.template,
            "image": {"name": "Ubuntu 24.04"},
            "product_id": self.rid,
            "product_name": "Unmanaged Linux VPS",
            "billingcycle": "monthly",
            "is_suspended": "0",
            "locked": "0",
            "status": self.status,
            "disp_status": self.vm_state.title(),
            "vm_state": self.vm_state,
            "task_state": self.task_state,
            "power_state": 1 if self.vm_state == "active" else 0,
            "ram": "2048",
            "cpu": "1",
            "disk": "50",
            "created_at": "2026-01-01 00:00:00",
        }


@dataclass
class Failure:
    status: int = 200
    body: str | None = None
    delay: float = 0.0


class FakeHostwinds:
    """The fake's state and a threaded HTTP server around it."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        allowed_ips: set[str] | None = None,
        templates: set[str] | None = None,
        plans: set[str] | None = None,
        locations: set[str] | None = None,
        polls_until_active: int = 2,
        user_data_field: str | None = None,
        list_delay_polls: int = 0,
    ) -> None:
        self.api_key = api_key
        # The key's IPv4 allow-list; None allows any address (like a key with no list yet).
        self.allowed_ips = allowed_ips
        self.templates = templates or {"tmpl-ubuntu-2404"}
        self.plans = plans or {"rid-small", "rid-large"}
        self.locations = locations or {"1", "2", "3"}
        self.polls_until_active = polls_until_active
        # A field name under which add_instance accepts user data (unknown for real Hostwinds).
        self.user_data_field = user_data_field
        # get_instances misses a new instance for this many calls (a slow order pipeline).
        self.list_delay_polls = list_delay_polls
        self.instances: dict[str, Instance] = {}
        self._hidden: dict[str, int] = {}
        self.requests: list[dict[str, list[str]]] = []
        self.content_types: list[str] = []
        self._failures: list[Failure] = []
        self._next_ip = 10
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    def start(self) -> FakeHostwinds:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which must be running
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeHostwinds:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test controls -----------------------------------------------------------------------

    def fail_next(self, *, status: int = 200, body: str | None = None, delay: float = 0.0) -> None:
        """The next request gets this answer (e.g. 503, an HTML page, or a slow reply)."""
        self._failures.append(Failure(status=status, body=body, delay=delay))

    def attach_ip(self, serviceid: str) -> str:
        """Staff ordered an extra IP in the portal and it is now attached."""
        with self._lock:
            ip = self._allocate()
            self.instances[serviceid].secondary_ips.append(ip)
            return ip

    def actions(self) -> list[str]:
        return [r.get("action", ["?"])[0] for r in self.requests]

    # --- protocol ----------------------------------------------------------------------------

    def _allocate(self) -> str:
        ip = f"198.51.100.{self._next_ip}"
        self._next_ip += 1
        return ip

    def handle(self, client_ip: str, content_type: str, raw: bytes) -> tuple[int, str]:
        if self._failures:
            failure = self._failures.pop(0)
            if failure.delay:
                time.sleep(failure.delay)
            if failure.status != 200 or failure.body is not None:
                return failure.status, failure.body or "<html>Service Unavailable</html>"
        self.content_types.append(content_type)
        if not content_type.startswith("application/x-www-form-urlencoded"):
            # Hostwinds answers a JSON body this way (reported by a PHP client author).
            return 200, _dump(_error("Authorization", "Authorization Failure"))
        form = parse_qs(raw.decode(), keep_blank_values=True)
        with self._lock:
            self.requests.append(form)
            if form.get("API", [""])[0] != self.api_key or (
                self.allowed_ips is not None and client_ip not in self.allowed_ips
            ):
                # Sometimes a bare object, sometimes in a list; this fake uses the bare one.
                return 200, _dump(
                    {"result": "error", "action": "Authorization", "message": "Not Authorized!"}
                )
            action = form.get("action", [""])[0]
            handler = getattr(self, f"_do_{action}", None)
            if handler is None:
                return 200, _dump(_error(action, "Invalid action."))
            return 200, _dump(handler({k: v[0] for k, v in form.items()}, form))

    def _instance(self, params: dict[str, str]) -> Instance | None:
        return self.instances.get(params.get("serviceid", ""))

    def _do_add_instance(self, p: dict[str, str], form: dict[str, list[str]]) -> Reply:
        if p.get("location_id") not in self.locations:
            return _error("Add Instance", "Location Id is invalid.", "5530001")
        if p.get("template") not in self.templates:
            return _error("Add Instance", "Template is invalid.", "5530002")
        if p.get("rid") not in self.plans:
            return _error("Add Instance", "Product is invalid.", "5530003")
        if p.get("billingcycle") == "hourly":
            return _error(
                "Add Instance", "Hourly products are disabled! Please contact customer service."
            )
        serviceid = str(random.randint(100000, 999999))
        while serviceid in self.instances:
            serviceid = str(random.randint(100000, 999999))
        self.instances[serviceid] = Instance(
            serviceid=serviceid,
            srvrname=p.get("srvrname", ""),
            template=p["template"],
            rid=p["rid"],
            location_id=p["location_id"],
            main_ip=self._allocate(),
            polls_until_active=self.polls_until_active,
            keys=form.get("keys[]", []),
            user_data=p.get(self.user_data_field) if self.user_data_field else None,
        )
        self._hidden[serviceid] = self.list_delay_polls
        # No serviceid in the reply: clients must find the instance by name.
        return [
            {"result": "success", "action": "Invoice Paid", "message": "Invoice Paid"},
            {"result": "success", "action": "Add Instance", "message": "Server is being Created!"},
        ]

    def _do_get_instances(self, p: dict[str, str], form: dict[str, list[str]]) -> Reply:
        visible = []
        for sid, instance in self.instances.items():
            if self._hidden.get(sid, 0) > 0:
                self._hidden[sid] -= 1
                continue
            visible.append(instance.as_json())
        return {"success": visible}

    def _do_get_instance(self, p: dict[str, str], form: dict[str, list[str]]) -> Reply:
        instance = self._instance(p)
        if instance is None:
            return _error("Get Instance", "A valid serviceid is required.", "5529903")
        # Each poll moves the build along: building -> active.
        if instance.vm_state == "building":
            if instance.polls_until_active <= 0:
                instance.vm_state, instance.task_state = "active", None
            else:
                instance.polls_until_active -= 1
        return {"success": instance.as_json()}

    def _do_get_instance_ips(self, p: dict[str, str], form: dict[str, list[str]]) -> Reply:
        instance = self._instance(p)
        if instance is None:
            return _error("Get Instance IPs", "A valid serviceid is required.", "5529903")
        if instance.vm_state == "building":
            return {"success": {"IP Addresses": []}}
        return {"success": {"IP Addresses": [instance.main_ip, *instance.secondary_ips]}}

    def _do_set_rdns(self, p: dict[str, str], form: dict[str, list[str]]) -> Reply:
        instance = self._instance(p)
        if instance is None:
            return _error("Set rDNS", "A valid serviceid is required.", "5529903")
        ip = p.get("ip", "")
        if ip != instance.main_ip and ip not in instance.secondary_ips:
            return _error("Set rDNS", "IP address does not belong to this service.")
        if not p.get("rdns"):
            return _error("Set rDNS", "rDNS is required.")
        instance.ptr[ip] = p["rdns"]
        return [{"result": "success", "action": "Set rDNS", "message": "rDNS record updated."}]

    def _do_shutdown(self, p: dict[str, str], form: dict[str, list[str]]) -> Reply:
        instance = self._instance(p)
        if instance is None:
            return _error("Shutdown", "A valid serviceid is required.", "5529903")
        instance.vm_state, instance.task_state = "stopped", None
        done = "Server has been shut down!"
        return [{"result": "success", "action": "Shutdown", "message": done}]

    def _do_boot(self, p: dict[str, str], form: dict[str, list[str]]) -> Reply:
        instance = self._instance(p)
        if instance is None:
            return _error("Boot", "A valid serviceid is required.", "5529903")
        instance.vm_state, instance.task_state = "active", None
        return [{"result": "success", "action": "Boot", "message": "Server has been started!"}]

    def _do_terminate(self, p: dict[str, str], form: dict[str, list[str]]) -> Reply:
        instance = self._instance(p)
        if instance is None:
            return _error("Terminate", "A valid serviceid is required.", "5529903")
        del self.instances[instance.serviceid]
        return [{"result": "success", "action": "Terminate", "message": "Instance deleted"}]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path != PATH:
                    self._reply(404, "<html>Not Found</html>")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                status, body = fake.handle(
                    self.client_address[0],
                    self.headers.get("Content-Type", ""),
                    self.rfile.read(length),
                )
                self._reply(status, body)

            def _reply(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header(
                    "Content-Type", "application/json" if status == 200 else "text/html"
                )
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # quiet: the request log lives in fake.requests

        return Handler


def _error(action: str, message: str, code: str | None = None) -> list[dict[str, str]]:
    entry = {"result": "error", "action": action, "message": message}
    if code:
        entry["ERROR"] = code
    return [entry]


def _dump(reply: Reply) -> str:
    return json.dumps(reply)
