package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/signature"
)

// payForm is what a buyer's click on the pay page asks for.
type payForm struct {
	success  bool
	async    int // webhook deliveries: 0, 1 or 2
	sync     int // sync returns: 0, 1 or 2
	amount   int64
	reverse  bool
	bad      bool
	delay    time.Duration
	delaySet bool
}

// maxDelay bounds the delay_ms a pay form may ask for.
const maxDelay = time.Minute

func parsePayForm(f url.Values) (payForm, error) {
	var pf payForm
	switch f.Get("result") {
	case "success":
		pf.success = true
	case "decline":
	default:
		return pf, errors.New("result must be success or decline")
	}
	switch f.Get("callbacks") {
	case "", "both":
		pf.async, pf.sync = 1, 1
	case "async":
		pf.async = 1
	case "sync":
		pf.sync = 1
	case "none":
	case "twice":
		pf.async, pf.sync = 2, 2
	default:
		return pf, errors.New("callbacks must be both, async, sync, none or twice")
	}
	if a := f.Get("amount"); a != "" {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n <= 0 {
			return pf, errors.New("amount must be a positive integer of minor units")
		}
		pf.amount = n
	}
	switch f.Get("order") {
	case "", "normal":
	case "reverse":
		pf.reverse = true
	default:
		return pf, errors.New("order must be normal or reverse")
	}
	switch f.Get("signature") {
	case "", "good":
	case "bad":
		pf.bad = true
	default:
		return pf, errors.New("signature must be good or bad")
	}
	if d := f.Get("delay_ms"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || time.Duration(n)*time.Millisecond > maxDelay {
			return pf, errors.New("delay_ms must be in 0..60000")
		}
		pf.delay, pf.delaySet = time.Duration(n)*time.Millisecond, true
	}
	return pf, nil
}

var payPageTmpl = template.Must(template.New("pay").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Simulator PSP</title></head>
<body>
<h1>Simulator PSP</h1>
<p>Payment {{.ID}} for {{.Ref}}: <strong>{{.Amount}}</strong>{{with .Description}} ({{.}}){{end}}</p>
{{if eq .Status "created"}}
<form method="post">
<p><label>Callbacks <select name="callbacks">
<option value="both">both</option><option value="async">async only</option>
<option value="sync">sync only</option><option value="none">none (lost)</option>
<option value="twice">twice</option></select></label></p>
<p><button name="result" value="success">Pay</button>
<button name="result" value="decline">Decline</button></p>
</form>
{{else}}
<p>This payment is {{.Status}}.</p>
{{end}}
</body></html>
`))

var donePageTmpl = template.Must(template.New("done").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Simulator PSP</title></head>
<body><h1>Payment done</h1><p>Payment {{.ID}} {{.Status}}.</p></body></html>
`))

func writeHTML(w http.ResponseWriter, status int, t *template.Template, data any) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil { // our templates with our data
		panic(err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// payPage is GET /pay/{id}: the page a buyer is sent to.
func (s *Server) payPage(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	s.mu.Lock()
	p := s.payments[r.PathValue("id")]
	var data map[string]string
	if p != nil {
		s.refresh(p, now)
		data = map[string]string{"ID": p.id, "Ref": p.req.MerchantRef, "Amount": p.amount.String(),
			"Description": p.req.Description, "Status": p.status}
	}
	s.mu.Unlock()
	if p == nil {
		http.Error(w, "no such payment", http.StatusNotFound)
		return
	}
	writeHTML(w, http.StatusOK, payPageTmpl, data)
}

// delivery is one callback to send: a webhook, or a repeated sync return.
type delivery struct {
	webhook  bool
	url      string
	merchant string
	body     []byte
	secret   []byte // signs the webhook: the merchant's, or a forger's
	delay    time.Duration
}

// pay is POST /pay/{id}: what the buyer's click does. The payment is
// decided under the lock; callbacks are sent after it.
func (s *Server) pay(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "form too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read form", http.StatusBadRequest)
		return
	}
	pf, err := parsePayForm(r.PostForm)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	p := s.payments[r.PathValue("id")]
	if p == nil {
		s.mu.Unlock()
		http.Error(w, "no such payment", http.StatusNotFound)
		return
	}
	s.refresh(p, now)
	switch p.status {
	case statusExpired:
		s.mu.Unlock()
		http.Error(w, "payment expired", http.StatusGone)
		return
	case statusSucceeded, statusFailed:
		st := p.status
		s.mu.Unlock()
		http.Error(w, "payment already "+st, http.StatusConflict)
		return
	}

	// The buyer's click, then the PSP's own faults on top of it.
	f := s.fateOf(p)
	if f.decline {
		pf.success = false
	}
	if f.drop {
		pf.async, pf.sync = 0, 0
	}
	if f.duplicate {
		pf.async, pf.sync = min(2*pf.async, 2), min(2*pf.sync, 2)
	}
	pf.reverse = pf.reverse || f.reorder
	pf.bad = pf.bad || f.badSignature
	if !pf.delaySet {
		pf.delay = s.cfg.CallbackDelay
		if f.delay > 0 {
			pf.delay = f.delay
		}
	}

	amount := p.amount
	p.done = now
	if pf.success {
		collected := p.amount.Minor()
		switch {
		case pf.amount > 0:
			collected = pf.amount
		case f.amount > 0:
			collected = f.amount
		}
		p.status = statusSucceeded
		p.paid = domain.MustMoney(collected, amount.Currency().Code())
		amount = p.paid
	} else {
		p.status = statusFailed
	}
	ev := webhookJSON{
		EventID: newID("evt_"), Type: eventFailed, PaymentID: p.id, MerchantRef: p.req.MerchantRef,
		Status: p.status, Amount: amount.Minor(), Currency: amount.Currency().Code(), OccurredAt: now.UTC(),
	}
	if pf.success {
		ev.Type = eventSucceeded
	}
	secret := []byte(s.cfg.Merchants[p.merchant])
	if pf.bad {
		secret = append([]byte("forged:"), secret...)
	}
	notifyURL, returnURL, merchant := p.req.NotifyURL, p.req.ReturnURL, p.merchant
	s.mu.Unlock()

	body, err := json.Marshal(ev)
	if err != nil {
		panic(err) // our own type
	}
	hook := delivery{webhook: true, url: notifyURL, merchant: merchant, body: body, secret: secret, delay: pf.delay}
	if notifyURL == "" {
		pf.async = 0
	}
	if returnURL == "" {
		pf.sync = 0
	}

	first := 0
	if pf.reverse && pf.async > 0 {
		// Delivered and acknowledged before the browser hears back; if the
		// first delivery fails, its retries go on in the background.
		if !s.deliverFrom(r.Context(), hook, 0, true) {
			s.spawn(func(ctx context.Context) { s.deliverFrom(ctx, hook, 1, false) })
		}
		first = 1
	}
	for range pf.async - first {
		s.spawn(func(ctx context.Context) { s.deliverFrom(ctx, hook, 0, false) })
	}

	if pf.sync == 0 {
		writeHTML(w, http.StatusOK, donePageTmpl, map[string]string{"ID": ev.PaymentID, "Status": ev.Status})
		return
	}
	loc := signedReturn(returnURL, ev, secret, s.cfg.Now().Unix())
	if pf.sync == 2 {
		// A browser never sends one return twice by itself; a buyer who
		// reloads the return page does. The simulator plays that buyer.
		again := delivery{url: loc, delay: pf.delay}
		s.spawn(func(ctx context.Context) { s.deliverFrom(ctx, again, 0, true) })
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusSeeOther)
}

// signedReturn is returnURL with the signed sync parameters added; the
// merchant's own parameters are kept and signed too.
func signedReturn(returnURL string, ev webhookJSON, secret []byte, ts int64) string {
	u, err := url.Parse(returnURL)
	if err != nil { // validated at creation
		panic(err)
	}
	q := u.Query()
	q.Set(qPaymentID, ev.PaymentID)
	q.Set(qMerchantRef, ev.MerchantRef)
	q.Set(qStatus, ev.Status)
	q.Set(qAmount, strconv.FormatInt(ev.Amount, 10))
	q.Set(qCurrency, ev.Currency)
	q.Set(qTimestamp, strconv.FormatInt(ts, 10))
	q.Del(qSignature)
	q.Set(qSignature, signQuery(secret, ts, q))
	u.RawQuery = q.Encode()
	return u.String()
}

// signWebhook sets the headers of a webhook with body, signed at ts.
func signWebhook(h http.Header, merchant string, secret []byte, ts int64, body []byte) {
	h.Set("Content-Type", "application/json")
	h.Set(headerMerchant, merchant)
	h.Set(headerTimestamp, strconv.FormatInt(ts, 10))
	h.Set(headerSignature, signature.Header(secret, ts, body))
}

// spawn runs f in a goroutine that Close cancels and waits for; after
// Close it runs nothing.
func (s *Server) spawn(f func(ctx context.Context)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.ctx)
	}()
}

// deliverFrom waits d.delay (before a first attempt), then sends d,
// starting at attempt number from, and retries per WebhookRetry until an
// answer is 2xx, unless once is set. It reports whether d was
// acknowledged.
func (s *Server) deliverFrom(ctx context.Context, d delivery, from int, once bool) bool {
	wait := d.delay
	for i := from; ; i++ {
		if i > 0 {
			if i-1 >= len(s.cfg.WebhookRetry) {
				return false
			}
			wait = s.cfg.WebhookRetry[i-1]
		}
		if !sleep(ctx, wait) {
			return false
		}
		if s.send(ctx, d) {
			return true
		}
		if once {
			return false
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// send makes one delivery. A webhook is signed afresh each time, so a
// late retry carries a current timestamp over the same bytes.
func (s *Server) send(ctx context.Context, d delivery) bool {
	var req *http.Request
	var err error
	if d.webhook {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
		if err != nil {
			return false
		}
		signWebhook(req.Header, d.merchant, d.secret, s.cfg.Now().Unix(), d.body)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, d.url, nil)
		if err != nil {
			return false
		}
	}
	req.Header.Set("User-Agent", "paygate-sim/1")
	resp, err := s.cfg.CallbackClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

// Pay posts the pay form to payURL as the buyer's browser would. A nil
// client means one that does not follow redirects, so that the caller
// sees the 303 to the return URL; the caller closes the response body.
func Pay(ctx context.Context, client *http.Client, payURL string, form url.Values) (*http.Response, error) {
	if client == nil {
		client = &http.Client{
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, payURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return client.Do(req)
}
