"""A Stripe-shaped HTTP server on loopback: the slice of API v1 that Attune calls, in memory.

It speaks Stripe's wire format (form-encoded requests with bracketed keys, JSON objects with
`object` fields, error envelopes, Idempotency-Key replay), so the app's real StripeClient talks
to it unchanged. The Stripe-side actions a person takes in Checkout or the Portal, or that
Stripe takes by itself (renewals, endings), are methods here that change the state and return
the webhook events Stripe would send; tests sign and deliver those events in any order.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.support.processes import free_port

API_VERSION = "2026-10-28.endive"
PERIOD_S = 30 * 24 * 3600
PRICES = {"price_hobby": 1500, "price_pro": 4900, "price_studio": 14900, "price_overage": 0}
SECRET_KEY = "sk_test_attune"
WEBHOOK_SECRET = "whsec_attune_test"


@dataclass
class Fault:
    """What to do to the next matching request: answer late ("timeout") or fail ("error")."""

    method: str
    path: str
    kind: str
    delay: float = 0.0


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class CheckoutClosed(Exception):
    """The person tried to pay on a Checkout page that is no longer open."""


class StripeError(Exception):
    def __init__(self, status: int, message: str, code: str = "", kind: str = "") -> None:
        super().__init__(message)
        self.status, self.code = status, code
        self.kind = kind or ("api_error" if status >= 500 else "invalid_request_error")


def decode_form(raw: str) -> dict[str, Any]:
    """Stripe's form encoding (a[b][0][c]=v) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+|(?<=\[)(?=\])", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


class StripeServer:
    """In-memory Stripe: customers, Checkout, Portal, subscriptions, invoices, meter events."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.ids = itertools.count(1)
        self.reset()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.httpd = make_server("127.0.0.1", self.port, self.wsgi, threaded=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Shut the server down."""
        self.httpd.shutdown()

    def reset(self) -> None:
        """Forget every object, fault and recorded request."""
        with self.lock:
            self.customers: dict[str, dict[str, Any]] = {}
            self.sessions: dict[str, dict[str, Any]] = {}
            self.line_items: dict[str, list[dict[str, Any]]] = {}
            self.sub_metadata: dict[str, dict[str, Any]] = {}
            self.subscriptions: dict[str, dict[str, Any]] = {}
            self.invoices: dict[str, dict[str, Any]] = {}
            self.meter_events: dict[str, dict[str, Any]] = {}
            self.prices: dict[str, dict[str, Any]] = {}
            self.idempotent: dict[tuple[str, str], tuple[int, str]] = {}
            self.requests: list[Recorded] = []
            self.faults: list[Fault] = []
            self.latency: dict[tuple[str, str], float] = {}
            self.last_created = 0

    # ---- test controls -------------------------------------------------------------------

    def fail_next(self, method: str, path: str, kind: str = "timeout", delay: float = 2.0) -> None:
        """Make the next `method` request to a path starting with `path` time out or fail.

        "timeout" processes the request (as Stripe would) but answers after `delay` seconds,
        after the client gave up; "error" answers 500 without doing anything.
        """
        with self.lock:
            self.faults.append(Fault(method.upper(), path, kind, delay))

    def set_price(
        self, price_id: str, unit_amount: int, currency: str = "usd", interval: str = "month"
    ) -> None:
        """A recurring price, as the dashboard would have created it."""
        with self.lock:
            self.prices[price_id] = {
                "id": price_id, "object": "price", "active": True, "currency": currency,
                "unit_amount": unit_amount, "type": "recurring",
                "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"},
            }  # fmt: skip

    def set_metered_price(self, price_id: str, per_unit: str, currency: str = "usd") -> None:
        """A metered price, `per_unit` smallest units per meter unit (a decimal string)."""
        with self.lock:
            self.prices[price_id] = {
                "id": price_id, "object": "price", "active": True, "currency": currency,
                "unit_amount": None, "unit_amount_decimal": per_unit, "type": "recurring",
                "billing_scheme": "per_unit",
                "recurring": {"interval": "month", "interval_count": 1, "usage_type": "metered"},
            }  # fmt: skip

    def slow(self, method: str, path: str, seconds: float) -> None:
        """Answer every `method` request to paths starting with `path` `seconds` late."""
        self.latency[(method.upper(), path)] = seconds

    def calls(self, method: str, path: str) -> list[Recorded]:
        """The recorded requests to paths starting with `path`."""
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path)]

    def meter_total(self, customer: str) -> int:
        """The seconds the meter holds for `customer`: what Stripe would bill as overage."""
        with self.lock:
            events = self.meter_events.values()
            return sum(
                int(e["payload"]["value"])
                for e in events
                if e["payload"]["stripe_customer_id"] == customer
            )

    # ---- what happens in Stripe (returns the webhook events it sends) --------------------

    def event(self, kind: str, obj: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """A webhook event carrying a snapshot of `obj`; `created` strictly increases."""
        with self.lock:
            self.last_created = max(int(time.time()), self.last_created + 1)
            return {
                "id": self._id("evt"),
                "object": "event",
                "api_version": API_VERSION,
                "created": self.last_created,
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": kind,
                "data": {"object": copy.deepcopy(obj), **extra},
            }

    def complete_checkout(
        self, session_id: str, period_start: int | None = None
    ) -> list[dict[str, Any]]:
        """The person pays in Checkout: a subscription and its first paid invoice."""
        with self.lock:
            session = self.sessions[session_id]
            if session["status"] != "open":
                raise CheckoutClosed(f"checkout session {session_id} is {session['status']}")
            start = period_start or int(time.time())
            sub_id = self._id("sub")
            items = [
                {
                    "id": self._id("si"),
                    "object": "subscription_item",
                    "price": {"id": line["price"], "object": "price"},
                    "quantity": int(line["quantity"]) if "quantity" in line else None,
                    "current_period_start": start,
                    "current_period_end": start + PERIOD_S,
                    "subscription": sub_id,
                }
                for line in self.line_items[session_id]
            ]
            subscription = {
                "id": sub_id,
                "object": "subscription",
                "customer": session["customer"],
                "status": "active",
                "cancel_at_period_end": False,
                "cancel_at": None,
                "canceled_at": None,
                "ended_at": None,
                "created": int(time.time()),
                "metadata": dict(self.sub_metadata[session_id]),
                "items": {"object": "list", "data": items, "has_more": False},
            }
            self.subscriptions[sub_id] = subscription
            session.update(status="complete", payment_status="paid", subscription=sub_id)
            invoice = self._invoice(subscription, "paid", "subscription_create")
            return [
                self.event("checkout.session.completed", session),
                self.event("customer.subscription.created", subscription),
                self.event("invoice.paid", invoice),
            ]

    def change_price(self, sub_id: str, price: str) -> list[dict[str, Any]]:
        """Plan change in the Portal: the base item gets another price, the period stays."""
        with self.lock:
            subscription = self.subscriptions[sub_id]
            base = subscription["items"]["data"][0]
            previous = copy.deepcopy(subscription["items"])
            base["price"] = {"id": price, "object": "price"}
            invoice = self._invoice(subscription, "paid", "subscription_update")
            return [
                self.event(
                    "customer.subscription.updated",
                    subscription,
                    previous_attributes={"items": previous},
                ),
                self.event("invoice.paid", invoice),
            ]

    def set_cancel_at_period_end(self, sub_id: str, value: bool) -> list[dict[str, Any]]:
        """Cancel (or undo cancelling) in the Portal."""
        with self.lock:
            subscription = self.subscriptions[sub_id]
            subscription["cancel_at_period_end"] = value
            subscription["canceled_at"] = int(time.time()) if value else None
            return [
                self.event(
                    "customer.subscription.updated",
                    subscription,
                    previous_attributes={"cancel_at_period_end": not value},
                )
            ]

    def renew(self, sub_id: str, paid: bool = True) -> list[dict[str, Any]]:
        """The period rolls over: Stripe advances the items, then the invoice is paid or fails."""
        with self.lock:
            subscription = self.subscriptions[sub_id]
            for item in subscription["items"]["data"]:
                item["current_period_start"] = item["current_period_end"]
                item["current_period_end"] += PERIOD_S
            subscription["status"] = "active" if paid else "past_due"
            invoice = self._invoice(subscription, "paid" if paid else "open", "subscription_cycle")
            kind = "invoice.paid" if paid else "invoice.payment_failed"
            return [
                self.event("customer.subscription.updated", subscription),
                self.event(kind, invoice),
            ]

    def pay(self, invoice_id: str) -> list[dict[str, Any]]:
        """An open invoice is paid later (a retried card, a bank transfer)."""
        with self.lock:
            invoice = self.invoices[invoice_id]
            invoice.update(status="paid", amount_paid=invoice["amount_due"])
            return [self.event("invoice.paid", invoice)]

    def end(self, sub_id: str) -> list[dict[str, Any]]:
        """The subscription ends (period over after cancelling, or unpaid)."""
        with self.lock:
            subscription = self.subscriptions[sub_id]
            now = int(time.time())
            subscription.update(status="canceled", ended_at=now, canceled_at=now)
            return [self.event("customer.subscription.deleted", subscription)]

    # ---- HTTP ----------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        raw = request.get_data(as_text=True)
        params = decode_form(raw if request.method == "POST" else request.query_string.decode())
        with self.lock:
            self.requests.append(
                Recorded(request.method, request.path, params, dict(request.headers))
            )
            fault = self._take_fault(request.method, request.path)
        for (method, prefix), seconds in list(self.latency.items()):
            if method == request.method and request.path.startswith(prefix):
                time.sleep(seconds)
        if fault is not None and fault.kind == "error":
            status, body = 500, self._error_body(StripeError(500, "Something went wrong."))
        else:
            status, body = self._answer(request, params)
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.delay)
        response = Response(body, status=status, content_type="application/json")
        response.headers["Request-Id"] = self._id("req")
        return response(environ, start_response)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and path.startswith(fault.path):
                self.faults.remove(fault)
                return fault
        return None

    def _answer(self, request: Request, params: dict[str, Any]) -> tuple[int, str]:
        if request.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
            return 401, self._error_body(StripeError(401, "Invalid API Key provided."))
        key = request.headers.get("Idempotency-Key")
        with self.lock:
            if key and (request.method, key) in self.idempotent:
                return self.idempotent[(request.method, key)]
            try:
                status, body = 200, json.dumps(self._route(request.method, request.path, params))
            except StripeError as exc:
                status, body = exc.status, self._error_body(exc)
            if key and status < 500:
                self.idempotent[(request.method, key)] = (status, body)
            return status, body

    def _error_body(self, exc: StripeError) -> str:
        return json.dumps({"error": {"type": exc.kind, "message": str(exc), "code": exc.code}})

    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        match (method, parts):
            case ("POST", ["v1", "customers"]):
                return self._create_customer(params)
            case ("POST", ["v1", "checkout", "sessions"]):
                return self._create_session(params)
            case ("GET", ["v1", "checkout", "sessions"]):
                return self._list_sessions(params)
            case ("POST", ["v1", "checkout", "sessions", session_id, "expire"]):
                return self._expire_session(session_id)
            case ("POST", ["v1", "billing_portal", "sessions"]):
                return self._create_portal(params)
            case ("GET", ["v1", "prices", price_id]):
                if price_id not in self.prices:
                    raise StripeError(404, f"No such price: '{price_id}'", "resource_missing")
                return self.prices[price_id]
            case ("GET", ["v1", "subscriptions", sub_id]):
                return self._subscription(sub_id)
            case ("POST", ["v1", "subscriptions", sub_id]):
                return self._update_subscription(sub_id, params)
            case ("DELETE", ["v1", "subscriptions", sub_id]):
                return self._cancel_subscription(sub_id)
            case ("GET", ["v1", "invoices"]):
                return self._list_invoices(params)
            case ("POST", ["v1", "billing", "meter_events"]):
                return self._meter_event(params)
        raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")

    def _create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = {
            "id": self._id("cus"),
            "object": "customer",
            "email": params.get("email"),
            "name": params.get("name"),
            "metadata": params.get("metadata", {}),
            "created": int(time.time()),
        }
        self.customers[customer["id"]] = customer
        return customer

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("customer") not in self.customers:
            raise StripeError(400, "No such customer", "resource_missing")
        lines = params.get("line_items") or []
        for line in lines:
            if line.get("price") not in PRICES:
                raise StripeError(400, f"No such price: '{line.get('price')}'", "resource_missing")
        session_id = self._id("cs_test")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": params.get("mode"),
            "customer": params["customer"],
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "status": "open",
            "payment_status": "unpaid",
            "subscription": None,
            "url": f"{self.url}/c/pay/{session_id}",
            "created": int(time.time()),
        }
        self.sessions[session_id] = session
        self.line_items[session_id] = lines
        self.sub_metadata[session_id] = (params.get("subscription_data") or {}).get("metadata", {})
        return session

    def _list_sessions(self, params: dict[str, Any]) -> dict[str, Any]:
        found = [
            session for session in self.sessions.values()
            if params.get("customer") in (None, session["customer"])
            and params.get("status") in (None, session["status"])
        ]  # fmt: skip
        found.sort(key=lambda session: session["id"], reverse=True)  # newest first
        limit = int(params.get("limit") or 10)
        return {"object": "list", "data": found[:limit], "has_more": len(found) > limit,
                "url": "/v1/checkout/sessions"}  # fmt: skip

    def _expire_session(self, session_id: str) -> dict[str, Any]:
        session = self.sessions.get(session_id)
        if session is None:
            raise StripeError(404, f"No such checkout.session: '{session_id}'", "resource_missing")
        if session["status"] != "open":
            raise StripeError(400, "Only Checkout Sessions with a status of open can be expired.")
        session["status"] = "expired"
        return session

    def _create_portal(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("customer") not in self.customers:
            raise StripeError(400, "No such customer", "resource_missing")
        portal_id = self._id("bps")
        return {
            "id": portal_id,
            "object": "billing_portal.session",
            "customer": params["customer"],
            "return_url": params.get("return_url"),
            "url": f"{self.url}/p/session/{portal_id}",
            "created": int(time.time()),
        }

    def _subscription(self, sub_id: str) -> dict[str, Any]:
        if sub_id not in self.subscriptions:
            raise StripeError(404, f"No such subscription: '{sub_id}'", "resource_missing")
        return self.subscriptions[sub_id]

    def _update_subscription(self, sub_id: str, params: dict[str, Any]) -> dict[str, Any]:
        subscription = self._subscription(sub_id)
        if subscription["status"] == "canceled":
            raise StripeError(400, "A canceled subscription can only update its metadata.")
        if "cancel_at_period_end" in params:
            subscription["cancel_at_period_end"] = params["cancel_at_period_end"] == "true"
        if "cancel_at" in params:
            subscription["cancel_at"] = int(params["cancel_at"]) if params["cancel_at"] else None
        return subscription

    def _cancel_subscription(self, sub_id: str) -> dict[str, Any]:
        subscription = self._subscription(sub_id)
        now = int(time.time())
        subscription.update(status="canceled", ended_at=now, canceled_at=now)
        return subscription

    def _list_invoices(self, params: dict[str, Any]) -> dict[str, Any]:
        found = [i for i in self.invoices.values() if i["customer"] == params.get("customer")]
        found.sort(key=lambda invoice: invoice["created"], reverse=True)
        limit = int(params.get("limit") or 10)
        return {"object": "list", "data": found[:limit], "has_more": len(found) > limit,
                "url": "/v1/invoices"}  # fmt: skip

    def _meter_event(self, params: dict[str, Any]) -> dict[str, Any]:
        identifier = params.get("identifier") or self._id("mev")
        payload = params.get("payload") or {}
        if payload.get("stripe_customer_id") not in self.customers:
            raise StripeError(400, "No customer for this meter event.", "resource_missing")
        if identifier in self.meter_events:
            raise StripeError(
                400,
                f"An event with identifier {identifier} already exists.",
                "resource_already_exists",
            )
        event = {
            "object": "billing.meter_event",
            "created": int(time.time()),
            "event_name": params.get("event_name"),
            "identifier": identifier,
            "livemode": False,
            "payload": payload,
            "timestamp": int(params.get("timestamp") or time.time()),
        }
        self.meter_events[identifier] = event
        return event

    def _invoice(self, subscription: dict[str, Any], status: str, reason: str) -> dict[str, Any]:
        items = subscription["items"]["data"]
        amount = sum(PRICES[i["price"]["id"]] for i in items if i.get("quantity"))
        number = f"ATT-{len(self.invoices) + 1:04d}"
        invoice_id = self._id("in")
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "customer": subscription["customer"],
            "number": number,
            "status": status,
            "billing_reason": reason,
            "currency": "usd",
            "amount_due": amount,
            "amount_paid": amount if status == "paid" else 0,
            "created": int(time.time()) + len(self.invoices),
            "hosted_invoice_url": f"{self.url}/i/{invoice_id}",
            "period_start": items[0]["current_period_start"],
            "period_end": items[0]["current_period_end"],
            "lines": {"object": "list", "has_more": False, "data": [_line(i) for i in items]},
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"subscription": subscription["id"], "metadata": {}},
            },
        }
        self.invoices[invoice_id] = invoice
        return invoice

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids):06d}"


def _line(item: dict[str, Any]) -> dict[str, Any]:
    """An invoice line as Stripe bills it: the plan's fee for the period ahead, metered use in
    arrears (the period before)."""
    licensed = item.get("quantity") is not None
    shift = 0 if licensed else PERIOD_S
    return {
        "object": "line_item",
        "amount": PRICES[item["price"]["id"]] if licensed else 0,
        "period": {
            "start": item["current_period_start"] - shift,
            "end": item["current_period_end"] - shift,
        },
        "pricing": {"price_details": {"price": item["price"]["id"]}},
    }
