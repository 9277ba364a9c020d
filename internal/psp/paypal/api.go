package paypal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// REST routes.
const (
	pathOrders       = "/v2/checkout/orders"
	pathCaptures     = "/v2/payments/captures/"
	pathRefunds      = "/v2/payments/refunds/"
	pathTransactions = "/v1/reporting/transactions"
)

type purchaseUnitJSON struct {
	ReferenceID string      `json:"reference_id,omitempty"`
	CustomID    string      `json:"custom_id,omitempty"`
	InvoiceID   string      `json:"invoice_id,omitempty"`
	Description string      `json:"description,omitempty"`
	Amount      *amountJSON `json:"amount,omitempty"`
	Payments    *struct {
		Captures []captureJSON `json:"captures"`
	} `json:"payments,omitempty"`
}

type createOrderJSON struct {
	Intent        string             `json:"intent"`
	PurchaseUnits []purchaseUnitJSON `json:"purchase_units"`
	PaymentSource *struct {
		PayPal struct {
			ExperienceContext experienceJSON `json:"experience_context"`
		} `json:"paypal"`
	} `json:"payment_source,omitempty"`
}

type experienceJSON struct {
	BrandName          string `json:"brand_name,omitempty"`
	ShippingPreference string `json:"shipping_preference"`
	UserAction         string `json:"user_action"`
	ReturnURL          string `json:"return_url,omitempty"`
	CancelURL          string `json:"cancel_url,omitempty"`
}

type linkJSON struct {
	Href   string `json:"href"`
	Rel    string `json:"rel"`
	Method string `json:"method"`
}

type orderJSON struct {
	ID            string             `json:"id"`
	Status        string             `json:"status"`
	Intent        string             `json:"intent"`
	CreateTime    string             `json:"create_time"`
	UpdateTime    string             `json:"update_time"`
	PurchaseUnits []purchaseUnitJSON `json:"purchase_units"`
	Links         []linkJSON         `json:"links"`
}

type captureJSON struct {
	ID                string      `json:"id"`
	Status            string      `json:"status"`
	Amount            *amountJSON `json:"amount"`
	CustomID          string      `json:"custom_id"`
	InvoiceID         string      `json:"invoice_id"`
	FinalCapture      bool        `json:"final_capture"`
	CreateTime        string      `json:"create_time"`
	UpdateTime        string      `json:"update_time"`
	SupplementaryData struct {
		RelatedIDs struct {
			OrderID string `json:"order_id"`
		} `json:"related_ids"`
	} `json:"supplementary_data"`
}

// Order statuses (Orders v2).
const (
	orderCreated         = "CREATED"
	orderSaved           = "SAVED"
	orderApproved        = "APPROVED"
	orderVoided          = "VOIDED"
	orderCompleted       = "COMPLETED"
	orderPayerActionReqd = "PAYER_ACTION_REQUIRED"
)

// Capture statuses (Payments v2).
const (
	captureCompleted         = "COMPLETED"
	captureDeclined          = "DECLINED"
	capturePartiallyRefunded = "PARTIALLY_REFUNDED"
	capturePending           = "PENDING"
	captureRefunded          = "REFUNDED"
	captureFailed            = "FAILED"
)

// Initiate creates an order (intent CAPTURE) whose one purchase unit
// carries the transaction code as reference_id, custom_id and invoice_id,
// under PayPal-Request-Id "order-"+code, so that a retry after an unknown
// outcome gets the same order back. The session's PayURL is the order's
// approve (or payer-action) link, its PSPReference the order id, which
// every later look-up needs. The buyer returns to ReturnURL whether they
// approved or cancelled; the return is not trusted, the order is queried.
func (c *Channel) Initiate(ctx context.Context, req psp.InitiateRequest) (psp.Session, error) {
	const op = "initiate"
	if req.TransactionCode == "" || req.Amount.IsZero() || req.Amount.Minor() <= 0 {
		return psp.Session{}, fmt.Errorf("paypal %s: transaction code and a positive amount are required: %w", op, psp.ErrDeclined)
	}
	if len(req.TransactionCode) > 127 {
		return psp.Session{}, fmt.Errorf("paypal %s: transaction code over 127 characters: %w", op, psp.ErrDeclined)
	}
	value, err := formatAmount(req.Amount)
	if err != nil {
		return psp.Session{}, fmt.Errorf("paypal %s: %v: %w", op, err, psp.ErrDeclined)
	}
	desc := req.Description
	if desc == "" {
		desc = req.OrderID
	}
	in := createOrderJSON{Intent: "CAPTURE", PurchaseUnits: []purchaseUnitJSON{{
		ReferenceID: req.TransactionCode, CustomID: req.TransactionCode, InvoiceID: req.TransactionCode,
		Description: truncateUTF8(desc, 127),
		Amount:      &amountJSON{CurrencyCode: req.Amount.Currency().Code(), Value: value},
	}}}
	in.PaymentSource = &struct {
		PayPal struct {
			ExperienceContext experienceJSON `json:"experience_context"`
		} `json:"paypal"`
	}{}
	in.PaymentSource.PayPal.ExperienceContext = experienceJSON{BrandName: truncateUTF8(c.cfg.BrandName, 127),
		ShippingPreference: "NO_SHIPPING", UserAction: "PAY_NOW", ReturnURL: req.ReturnURL, CancelURL: req.ReturnURL}
	status, body, err := c.call(ctx, op, http.MethodPost, pathOrders, "order-"+req.TransactionCode, in)
	if err != nil {
		return psp.Session{}, err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return psp.Session{}, classify(op, status, body)
	}
	var o orderJSON
	if err := decodeJSON(body, &o); err != nil {
		return psp.Session{}, malformed(op, err)
	}
	if o.ID == "" {
		return psp.Session{}, malformed(op, errors.New("answer has no order id"))
	}
	s := psp.Session{PSPReference: o.ID}
	for _, l := range o.Links {
		if (l.Rel == "approve" || l.Rel == "payer-action") && strings.HasPrefix(l.Href, "https://") {
			s.PayURL = l.Href
			break
		}
	}
	if s.PayURL == "" {
		return psp.Session{}, malformed(op, fmt.Errorf("order %s has no approve link", o.ID))
	}
	return s, nil
}

// truncateUTF8 cuts s to at most n bytes on a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Query cannot look an order up by our transaction code: Orders v2 finds
// orders by PayPal's id only. Without it the attempt is PSPUnknown (no
// error); callers with the order id use QueryByReference (psp.QueryAttempt
// does).
func (c *Channel) Query(_ context.Context, transactionCode string) (domain.Notification, error) {
	return domain.Notification{TransactionCode: transactionCode, Status: domain.PSPUnknown}, nil
}

// QueryByReference reads the order pspReference (GET
// /v2/checkout/orders/{id}) and, if the buyer has approved it, captures it
// (POST …/capture under PayPal-Request-Id "capture-"+code, so that
// concurrent or repeated queries capture once). A COMPLETED capture is
// succeeded with the captured amount; DECLINED or FAILED captures and
// VOIDED orders are failed; orders still waiting for the buyer, and
// pending captures, are pending; an order PayPal does not know is
// PSPUnknown. The order must be the transaction code's.
func (c *Channel) QueryByReference(ctx context.Context, transactionCode, pspReference string) (domain.Notification, error) {
	const op = "query"
	if pspReference == "" {
		return c.Query(ctx, transactionCode)
	}
	o, found, err := c.getOrder(ctx, op, pspReference)
	if err != nil || !found {
		return domain.Notification{TransactionCode: transactionCode, Status: domain.PSPUnknown}, err
	}
	if err := checkOrder(o, transactionCode, pspReference); err != nil {
		return domain.Notification{}, malformed(op, err)
	}
	if o.Status == orderApproved {
		if o, err = c.capture(ctx, transactionCode, o.ID); err != nil {
			return domain.Notification{}, err
		}
		if err := checkOrder(o, transactionCode, pspReference); err != nil {
			return domain.Notification{}, malformed("capture", err)
		}
	}
	n, err := orderNotification(o)
	if err != nil {
		return domain.Notification{}, malformed(op, err)
	}
	return n, nil
}

// getOrder reads an order; found is false for PayPal's 404.
func (c *Channel) getOrder(ctx context.Context, op, id string) (orderJSON, bool, error) {
	status, body, err := c.call(ctx, op, http.MethodGet, pathOrders+"/"+url.PathEscape(id), "", nil)
	if err != nil {
		return orderJSON{}, false, err
	}
	if status == http.StatusNotFound {
		return orderJSON{}, false, nil
	}
	if status != http.StatusOK {
		return orderJSON{}, false, classify(op, status, body)
	}
	var o orderJSON
	if err := decodeJSON(body, &o); err != nil {
		return orderJSON{}, false, malformed(op, err)
	}
	return o, true, nil
}

// capture captures an approved order. A 422 (ORDER_ALREADY_CAPTURED
// after a lost answer, INSTRUMENT_DECLINED when the buyer must pick
// another funding source) is answered by reading the order again, as it
// now stands; an order still APPROVED then reads as pending.
func (c *Channel) capture(ctx context.Context, code, orderID string) (orderJSON, error) {
	const op = "capture"
	status, body, err := c.call(ctx, op, http.MethodPost, pathOrders+"/"+url.PathEscape(orderID)+"/capture",
		"capture-"+code, struct{}{})
	if err != nil {
		return orderJSON{}, err
	}
	switch {
	case status == http.StatusCreated || status == http.StatusOK:
		var o orderJSON
		if err := decodeJSON(body, &o); err != nil {
			return orderJSON{}, malformed(op, err)
		}
		return o, nil
	case status == http.StatusUnprocessableEntity:
		o, found, err := c.getOrder(ctx, op, orderID)
		if err == nil && !found {
			err = fmt.Errorf("paypal %s: order %s vanished: %w", op, orderID, psp.ErrNotFound)
		}
		return o, err
	}
	return orderJSON{}, classify(op, status, body)
}

// codeOf is the transaction code a purchase unit carries: custom_id,
// else invoice_id, else reference_id (Initiate sets all three).
func codeOf(pu purchaseUnitJSON) string {
	switch {
	case pu.CustomID != "":
		return pu.CustomID
	case pu.InvoiceID != "":
		return pu.InvoiceID
	}
	return pu.ReferenceID
}

func checkOrder(o orderJSON, code, id string) error {
	if o.ID != id {
		return fmt.Errorf("answer for order %q, asked for %q", o.ID, id)
	}
	if len(o.PurchaseUnits) != 1 {
		return fmt.Errorf("order %s has %d purchase units, paygate makes one", o.ID, len(o.PurchaseUnits))
	}
	if got := codeOf(o.PurchaseUnits[0]); got != code {
		return fmt.Errorf("order %s is for %q, not %q", o.ID, got, code)
	}
	return nil
}

// orderNotification reads an order's state.
func orderNotification(o orderJSON) (domain.Notification, error) {
	if len(o.PurchaseUnits) != 1 {
		return domain.Notification{}, fmt.Errorf("order with %d purchase units", len(o.PurchaseUnits))
	}
	pu := o.PurchaseUnits[0]
	n := domain.Notification{TransactionCode: codeOf(pu), PSPReference: o.ID}
	if n.TransactionCode == "" {
		return domain.Notification{}, errors.New("order carries no transaction code")
	}
	var caps []captureJSON
	if pu.Payments != nil {
		caps = pu.Payments.Captures
	}
	if o.Status == orderCompleted || len(caps) > 0 {
		if len(caps) == 0 {
			return domain.Notification{}, fmt.Errorf("order %s is COMPLETED without a capture", o.ID)
		}
		// paygate makes one capture per order; the first settled one is
		// the payment.
		cp := caps[0]
		for _, x := range caps {
			if isCaptured(x.Status) {
				cp = x
				break
			}
		}
		st, err := captureStatus(cp.Status)
		if err != nil {
			return domain.Notification{}, err
		}
		n.Status = st
		if n.Amount, err = cp.Amount.money(); err != nil {
			return domain.Notification{}, fmt.Errorf("capture %s: %v", cp.ID, err)
		}
		if st == domain.PSPSucceeded {
			if n.OccurredAt, err = parseTime(cmpOr(cp.UpdateTime, cp.CreateTime)); err != nil {
				return domain.Notification{}, fmt.Errorf("capture %s: %v", cp.ID, err)
			}
		}
		return n, nil
	}
	switch o.Status {
	case orderCreated, orderSaved, orderApproved, orderPayerActionReqd:
		n.Status = domain.PSPPending
	case orderVoided:
		n.Status = domain.PSPFailed
	default:
		return domain.Notification{}, fmt.Errorf("unknown order status %q", o.Status)
	}
	m, err := pu.Amount.money()
	if err != nil {
		return domain.Notification{}, fmt.Errorf("order %s: %v", o.ID, err)
	}
	n.Amount = m
	return n, nil
}

func isCaptured(s string) bool {
	return s == captureCompleted || s == capturePartiallyRefunded || s == captureRefunded
}

// captureStatus: a completed capture is paid, and stays paid when it is
// refunded later (refunds are their own records).
func captureStatus(s string) (domain.PSPStatus, error) {
	switch s {
	case captureCompleted, capturePartiallyRefunded, captureRefunded:
		return domain.PSPSucceeded, nil
	case capturePending:
		return domain.PSPPending, nil
	case captureDeclined, captureFailed:
		return domain.PSPFailed, nil
	}
	return domain.PSPStatus{}, fmt.Errorf("unknown capture status %q", s)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

type refundRequestJSON struct {
	Amount      amountJSON `json:"amount"`
	CustomID    string     `json:"custom_id,omitempty"`
	NoteToPayer string     `json:"note_to_payer,omitempty"`
}

type refundJSON struct {
	ID       string      `json:"id"`
	Status   string      `json:"status"`
	Amount   *amountJSON `json:"amount"`
	CustomID string      `json:"custom_id"`
}

// Refund refunds req.Amount of the order req.PSPReference (the order id
// Initiate returned; PayPal refunds captures, so the order is read for
// its capture id, which paygate does not store) with POST
// /v2/payments/captures/{capture_id}/refund under PayPal-Request-Id =
// req.RefundRef, so that PayPal answers a retry with the same refund. The
// refund's custom_id is the refund ref too. Without the order id, or for
// an order not captured, nothing is called (psp.ErrDeclined).
func (c *Channel) Refund(ctx context.Context, req psp.RefundRequest) (psp.RefundResult, error) {
	const op = "refund"
	if req.RefundRef == "" || req.TransactionCode == "" || req.Amount.IsZero() || req.Amount.Minor() <= 0 {
		return psp.RefundResult{}, fmt.Errorf("paypal %s: refund ref, transaction code and a positive amount are required: %w", op, psp.ErrDeclined)
	}
	if req.PSPReference == "" {
		return psp.RefundResult{}, fmt.Errorf("paypal %s: %s: PayPal refunds need the order id (PSP reference), which is unknown: %w", op, req.TransactionCode, psp.ErrDeclined)
	}
	value, err := formatAmount(req.Amount)
	if err != nil {
		return psp.RefundResult{}, fmt.Errorf("paypal %s: %v: %w", op, err, psp.ErrDeclined)
	}
	o, found, err := c.getOrder(ctx, op, req.PSPReference)
	if err != nil {
		return psp.RefundResult{}, err
	}
	if !found {
		return psp.RefundResult{}, fmt.Errorf("paypal %s: order %s: %w", op, req.PSPReference, psp.ErrNotFound)
	}
	if err := checkOrder(o, req.TransactionCode, req.PSPReference); err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	var capt *captureJSON
	if p := o.PurchaseUnits[0].Payments; p != nil {
		for i := range p.Captures {
			if isCaptured(p.Captures[i].Status) {
				capt = &p.Captures[i]
				break
			}
		}
	}
	if capt == nil || capt.ID == "" {
		return psp.RefundResult{}, fmt.Errorf("paypal %s: order %s has no completed capture: %w", op, o.ID, psp.ErrDeclined)
	}
	if cm, err := capt.Amount.money(); err == nil && cm.Currency() != req.Amount.Currency() {
		return psp.RefundResult{}, fmt.Errorf("paypal %s: refund in %s of a capture in %s: %w", op,
			req.Amount.Currency().Code(), cm.Currency().Code(), psp.ErrDeclined)
	}
	in := refundRequestJSON{Amount: amountJSON{CurrencyCode: req.Amount.Currency().Code(), Value: value},
		CustomID: req.RefundRef, NoteToPayer: truncateUTF8(req.Reason, 255)}
	status, body, err := c.call(ctx, op, http.MethodPost, pathCaptures+url.PathEscape(capt.ID)+"/refund", req.RefundRef, in)
	if err != nil {
		return psp.RefundResult{}, err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return psp.RefundResult{}, classify(op, status, body)
	}
	var v refundJSON
	if err := decodeJSON(body, &v); err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	if v.ID == "" {
		return psp.RefundResult{}, malformed(op, errors.New("answer has no refund id"))
	}
	return refundResult(op, v, req.RefundRef, req.Amount)
}

// refundResult reads PayPal's refund object; amount is what was asked,
// used when PayPal's answer states none.
func refundResult(op string, v refundJSON, ref string, amount domain.Money) (psp.RefundResult, error) {
	r := psp.RefundResult{RefundRef: ref, PSPReference: v.ID, Amount: amount}
	switch v.Status {
	case "COMPLETED":
		r.Status = psp.RefundSucceeded
	case "PENDING":
		r.Status = psp.RefundPending
	case "FAILED", "CANCELLED":
		r.Status = psp.RefundFailed
	default:
		return psp.RefundResult{}, malformed(op, fmt.Errorf("unknown refund status %q", v.Status))
	}
	if v.Amount != nil {
		var err error
		if r.Amount, err = v.Amount.money(); err != nil {
			return psp.RefundResult{}, malformed(op, err)
		}
	}
	return r, nil
}

// QueryRefund cannot ask PayPal: Payments v2 finds a refund by PayPal's
// refund id only (GET /v2/payments/refunds/{id}). Without it, it answers
// RefundUnknown, which the refunds consumer reads as "call again with the
// same reference" for a refund whose call outcome is unknown: PayPal
// deduplicates by PayPal-Request-Id and answers with the refund it made.
func (c *Channel) QueryRefund(_ context.Context, refundRef string) (psp.RefundResult, error) {
	return psp.RefundResult{RefundRef: refundRef, Status: psp.RefundUnknown}, nil
}

// QueryRefundByReference asks PayPal about a refund by its refund id
// (GET /v2/payments/refunds/{id}) once PayPal has answered one — which is
// how a refund PayPal reported PENDING is followed up — and falls back to
// QueryRefund before that.
func (c *Channel) QueryRefundByReference(ctx context.Context, q psp.RefundQuery) (psp.RefundResult, error) {
	const op = "query_refund"
	if q.PSPReference == "" {
		return c.QueryRefund(ctx, q.RefundRef)
	}
	status, body, err := c.call(ctx, op, http.MethodGet, pathRefunds+url.PathEscape(q.PSPReference), "", nil)
	if err != nil {
		return psp.RefundResult{}, err
	}
	if status == http.StatusNotFound {
		return psp.RefundResult{RefundRef: q.RefundRef, Status: psp.RefundUnknown}, nil
	}
	if status != http.StatusOK {
		return psp.RefundResult{}, classify(op, status, body)
	}
	var v refundJSON
	if err := decodeJSON(body, &v); err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	if v.CustomID != "" && v.CustomID != q.RefundRef {
		return psp.RefundResult{}, malformed(op, fmt.Errorf("refund %s belongs to %s, not %s", v.ID, v.CustomID, q.RefundRef))
	}
	return refundResult(op, v, q.RefundRef, domain.Money{})
}

type transactionsJSON struct {
	TransactionDetails []struct {
		TransactionInfo struct {
			TransactionID         string      `json:"transaction_id"`
			EventCode             string      `json:"transaction_event_code"`
			InitiationDate        string      `json:"transaction_initiation_date"`
			UpdatedDate           string      `json:"transaction_updated_date"`
			Amount                *amountJSON `json:"transaction_amount"`
			Status                string      `json:"transaction_status"`
			InvoiceID             string      `json:"invoice_id"`
			CustomField           string      `json:"custom_field"`
			PayPalReferenceID     string      `json:"paypal_reference_id"`
			PayPalReferenceIDType string      `json:"paypal_reference_id_type"`
		} `json:"transaction_info"`
	} `json:"transaction_details"`
	Page       int `json:"page"`
	TotalPages int `json:"total_pages"`
}

// settlementPageSize is Transaction Search's largest page.
const settlementPageSize = 500

// SettledPayments lists the day's (UTC) successful payments with
// Transaction Search (GET /v1/reporting/transactions,
// transaction_status=S): the rows whose event code is a received payment
// (T00xx) with a positive amount and our transaction code in invoice_id
// or custom_field. PSPReference is PayPal's transaction id (the capture
// id), not the order id. Pages are PayPal's 1-based page numbers. PayPal
// documents that transactions appear up to three hours after they
// happen: fetch a day once it is well over.
func (c *Channel) SettledPayments(ctx context.Context, day time.Time, page string) (psp.SettlementPage, error) {
	const op = "settlements"
	p := 1
	if page != "" {
		n, err := strconv.Atoi(page)
		if err != nil || n < 1 {
			return psp.SettlementPage{}, fmt.Errorf("paypal %s: page %q: %w", op, page, psp.ErrMalformed)
		}
		p = n
	}
	start := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
	const layout = "2006-01-02T15:04:05-0700"
	q := url.Values{
		"start_date":         {start.Format(layout)},
		"end_date":           {start.Add(24*time.Hour - time.Second).Format(layout)},
		"transaction_status": {"S"},
		"fields":             {"transaction_info"},
		"page_size":          {strconv.Itoa(settlementPageSize)},
		"page":               {strconv.Itoa(p)},
	}
	status, body, err := c.call(ctx, op, http.MethodGet, pathTransactions+"?"+q.Encode(), "", nil)
	if err != nil {
		return psp.SettlementPage{}, err
	}
	if status != http.StatusOK {
		return psp.SettlementPage{}, classify(op, status, body)
	}
	var v transactionsJSON
	if err := decodeJSON(body, &v); err != nil {
		return psp.SettlementPage{}, malformed(op, err)
	}
	var out psp.SettlementPage
	for _, d := range v.TransactionDetails {
		ti := d.TransactionInfo
		code := cmpOr(ti.InvoiceID, ti.CustomField)
		if !strings.HasPrefix(ti.EventCode, "T00") || ti.Status != "S" || code == "" {
			continue
		}
		m, err := ti.Amount.money()
		if err != nil {
			return psp.SettlementPage{}, malformed(op, fmt.Errorf("transaction %s: %v", ti.TransactionID, err))
		}
		if m.Minor() <= 0 {
			continue
		}
		at, err := parseTime(cmpOr(ti.UpdatedDate, ti.InitiationDate))
		if err != nil {
			return psp.SettlementPage{}, malformed(op, fmt.Errorf("transaction %s: %v", ti.TransactionID, err))
		}
		out.Rows = append(out.Rows, psp.SettlementRow{TransactionCode: code, PSPReference: ti.TransactionID,
			Amount: m, Status: domain.PSPSucceeded, SettledAt: at})
	}
	if v.TotalPages > p {
		out.NextPage = strconv.Itoa(p + 1)
	}
	return out, nil
}
