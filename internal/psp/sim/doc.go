// Package sim is paygate's simulator PSP: a real HTTP server with its own
// signed protocol (Server), the psp.Channel adapter that speaks it
// (Channel), and Pay, which clicks the buyer's button. The server keeps an
// in-memory ledger and can inject the failures real PSPs produce:
// declines, API timeouts, lost, duplicated and reordered callbacks,
// forged signatures, changed amounts, slow refunds and missing settlement
// rows — at random with seeded rates, or scripted per payment.
//
// # Signing
//
// Every API request carries
//
//	X-Sim-Merchant:  <merchant id>
//	X-Sim-Timestamp: <unix seconds>
//	X-Sim-Signature: v1=<hex HMAC-SHA256(secret, "<ts>." + method + " " + request URI + "\n" + body)>
//
// (signature.Header over method, request URI as sent — path and raw
// query — and the raw body). A request that is unsigned, signed with
// another secret, for an unknown merchant, or whose timestamp is more
// than 300 s away from the simulator's clock either way, is answered
// 401. Bodies over 64 KiB are answered 413, malformed JSON 400. Error
// answers are JSON {"error": "<code>", "message": "..."}. Amounts are
// always integers of minor units with an ISO 4217 currency.
//
// # API
//
//	POST /api/v1/payments  {"merchant_ref","amount","currency","description","notify_url","return_url","expires_in_seconds"}
//	  201 {"id":"sp_…","merchant_ref","status":"created","amount","currency","pay_url","token","expires_at",…}
//	  The same request again under the same (merchant, merchant_ref): 200 with the same payment;
//	  another request under it: 409 conflict. expires_in_seconds defaults to 1800.
//	GET  /api/v1/payments?merchant_ref=X
//	  200 {"id","merchant_ref","status":"created|succeeded|failed|expired","amount","currency",
//	       "paid_amount","paid_at",…}; 404 {"error":"not_found"}.
//	  paid_amount is what was collected, which differs from amount when the amount was changed.
//	POST /api/v1/refunds   {"refund_ref","merchant_ref","amount","currency"(optional),"reason"}
//	  201 {"id":"sr_…","refund_ref","merchant_ref","payment_id","status":"pending|succeeded|failed","amount","currency"}
//	  The same request again under the same refund_ref: 200 with the same refund; another: 409.
//	  422 when the payment has not succeeded (payment_not_succeeded), the currency is not the
//	  payment's (currency_mismatch), or the amount exceeds what was collected minus the refunds
//	  not failed (exceeds_refundable). 404 for an unknown merchant_ref.
//	GET  /api/v1/refunds?refund_ref=X
//	GET  /api/v1/settlements?date=YYYY-MM-DD&page=<token>&page_size=N (default 1000, 1..5000)
//	  200 {"rows":[{"merchant_ref","payment_id","amount","currency","status":"succeeded","settled_at"}],
//	       "next_page":"<token>"}: the payments that succeeded on that business day in the
//	  server's Location, ordered by (settled_at, payment_id); an absent next_page ends the list.
//
// Any API call may, by APITimeoutRate or Script.APITimeouts, take effect
// and then stall and answer 504: the caller cannot tell whether it
// happened, exactly as with a real PSP.
//
// # Runtime control
//
// Unauthenticated (the simulator is a test PSP), for changing how one
// merchant — one sim channel — behaves while paygate runs (Behaviour):
//
//	POST /control/merchants/{merchant_id}
//	  {"decline_rate": 0.0-1.0, "initiate_error_rate": 0.0-1.0,
//	   "initiate_timeout_rate": 0.0-1.0, "latency_ms": N}
//	  200 with the behaviour now; the fields left out keep their values;
//	  400 for a rate outside 0-1, a negative latency or an unknown field;
//	  404 for an unknown merchant
//	GET  /control/merchants/{merchant_id}   200 the behaviour now
//	GET  /control/ledger                    200 {"payments": [...], "refunds": [...]}: the books
//
// decline_rate declines new payments whatever the buyer chooses (it
// replaces ServerConfig.DeclineRate for the merchant);
// initiate_error_rate answers creations 503 without creating anything;
// initiate_timeout_rate creates the payment, then stalls and answers 504;
// latency_ms is added to every API call of the merchant.
//
// # The buyer
//
// GET /pay/{id} is an HTML page with the buyer's buttons. POST /pay/{id}
// (form fields) does what the buyer's click does:
//
//	result     success | decline (required)
//	callbacks  both (default) | async | sync | none | twice (each kind twice)
//	amount     collect and report this amount instead (tampering)
//	order      reverse: the webhook is delivered and acknowledged before the browser's answer
//	signature  bad: callbacks are signed with a wrong secret
//	delay_ms   the wait before the webhook (default ServerConfig.CallbackDelay)
//
// The payment's faults (rates or Script) add to the form. A payment that
// has succeeded or failed answers 409, an expired one 410. With a sync
// callback the answer is 303 See Other to the return_url with the
// merchant's own parameters kept and
//
//	payment_id, merchant_ref, status (succeeded|failed), amount, currency, ts,
//	sig = "v1=" + hex HMAC-SHA256(secret, "<ts>." + canonical query)
//
// added, where the canonical query is every parameter but sig, sorted by
// key and URL-encoded (url.Values.Encode). Otherwise the answer is 200
// "payment done". With callbacks=twice the simulator also requests the
// signed return URL itself once more, as a buyer reloading the page would.
//
// # Webhooks
//
// After the callback delay, in the background, the simulator POSTs to the
// notify_url
//
//	{"event_id":"evt_…","type":"payment.succeeded|payment.failed","payment_id","merchant_ref",
//	 "status":"succeeded|failed","amount","currency","occurred_at"}
//
// with X-Sim-Merchant, X-Sim-Timestamp and X-Sim-Signature =
// signature.Header(secret, ts, raw body). A network error or a non-2xx
// answer is retried after each of ServerConfig.WebhookRetry, with the
// same bytes and a fresh timestamp; duplicates carry the same event_id.
// amount is what was collected (for a failure: what was asked).
package sim
