package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/paygate/paygate/internal/dlq"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/schemas"
)

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "overview", "Overview", c.sampler.overview())
}

func (c *Console) overviewJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, c.sampler.overview())
}

type ordersData struct {
	Query string
	Hits  []store.OrderHit
}

func (c *Console) orders(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	d := ordersData{Query: q}
	if q != "" {
		hits, err := c.store.FindOrders(r.Context(), q, 50)
		if err != nil {
			c.fail(w, r, http.StatusInternalServerError, "search failed", err)
			return
		}
		if len(hits) == 1 && hits[0].OrderID == q {
			http.Redirect(w, r, c.base+"/orders/"+url.PathEscape(q), http.StatusSeeOther)
			return
		}
		d.Hits = hits
	}
	c.render(w, r, http.StatusOK, "orders", "Orders", d)
}

// shownCallback is a stored callback with its raw request, masked.
type shownCallback struct {
	store.CallbackView
	Method, Path, Query string
	Headers             [][2]string
	Body                string
}

type orderData struct {
	Order     store.OrderView
	History   []store.HistoryEntry
	Callbacks []shownCallback
}

func (c *Console) order(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	o, err := c.store.OrderView(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		// Refused pay requests leave a history without an order.
		hist, herr := c.store.History(r.Context(), id)
		if herr == nil && len(hist) > 0 {
			c.render(w, r, http.StatusOK, "order", "Order "+id, orderData{Order: store.OrderView{OrderID: id}, History: hist})
			return
		}
		c.fail(w, r, http.StatusNotFound, fmt.Sprintf("nothing is known about order %q", id), nil)
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "cannot read the order", err)
		return
	}
	// The history is `paygate order`'s, from the same store read.
	hist, err := c.store.History(r.Context(), id)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "cannot read the order's history", err)
		return
	}
	d := orderData{Order: o, History: hist}
	for _, cb := range o.Callbacks {
		d.Callbacks = append(d.Callbacks, showCallback(cb))
	}
	c.render(w, r, http.StatusOK, "order", "Order "+id, d)
}

// sensitiveHeader matches the headers whose values are credentials or
// signatures: shown cut and marked, never whole (STYLE.md: no raw
// signature, no secret on an operator's screen).
var sensitiveHeader = regexp.MustCompile(`(?i)(authorization|cookie|signature|-sig$|token|secret|api-?key|password)`)

// mask shows the first 6 characters of a sensitive value.
func mask(v string) string {
	if len(v) <= 6 {
		return "***"
	}
	return v[:6] + fmt.Sprintf("… (masked, %d characters)", len(v))
}

func showCallback(cb store.CallbackView) shownCallback {
	s := shownCallback{CallbackView: cb}
	raw, err := schemas.DecodeRawCallback(cb.Raw)
	if err != nil {
		s.Body = fmt.Sprintf("(the stored message does not decode: %v)", err)
		return s
	}
	s.Method, s.Path = raw.Method, raw.Path
	if raw.Query != "" {
		q, err := url.ParseQuery(raw.Query)
		if err == nil {
			for k, vs := range q {
				if sensitiveHeader.MatchString(k) || strings.EqualFold(k, "sign") {
					for i := range vs {
						vs[i] = mask(vs[i])
					}
				}
			}
			s.Query = q.Encode()
		} else {
			s.Query = "(unreadable query)"
		}
	}
	names := make([]string, 0, len(raw.Headers))
	for k := range raw.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range raw.Headers[k] {
			if sensitiveHeader.MatchString(k) {
				v = mask(v)
			}
			s.Headers = append(s.Headers, [2]string{k, v})
		}
	}
	switch body := psp.Mask(raw.Body); {
	case len(raw.Body) == 0:
		s.Body = "(empty)"
	case utf8.ValidString(body):
		s.Body = body
	default:
		s.Body = fmt.Sprintf("(%d bytes, not text)", len(raw.Body))
	}
	return s
}

type channelsData struct {
	Channels []ChannelInfo
	Outcomes map[string]store.ChannelOutcomes
	Health   []ChannelHealth
	// HealthBuilt is false where no router is at hand.
	HealthBuilt bool
	HealthError string
	Policies    []store.RoutingPolicy
	PolicyError string
}

func (c *Console) channelsPage(w http.ResponseWriter, r *http.Request) {
	d := channelsData{Channels: c.channels, Outcomes: map[string]store.ChannelOutcomes{}, HealthBuilt: c.health != nil}
	out, err := c.store.AttemptOutcomes(r.Context(), c.cfg.Now().Add(-successWindow))
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "cannot read the attempts", err)
		return
	}
	for _, o := range out {
		d.Outcomes[o.Channel] = o
	}
	if c.health != nil {
		if d.Health, err = c.health(r.Context()); err != nil {
			d.HealthError = err.Error()
		}
	}
	// The routing policy's versions, newest (in force) first: what
	// `paygate routing` applies and audits.
	if d.Policies, err = c.store.RoutingPolicies(r.Context(), 20); err != nil {
		d.PolicyError = err.Error()
	}
	c.render(w, r, http.StatusOK, "channels", "Channels", d)
}

type reviewsData struct {
	Flagged     []store.FlaggedAttempt
	RiskBuilt   bool
	Reviews     []Review
	ReviewError string
}

func (c *Console) reviewsPage(w http.ResponseWriter, r *http.Request) {
	d := reviewsData{RiskBuilt: c.reviews != nil}
	var err error
	if d.Flagged, err = c.store.FlaggedAttempts(r.Context(), 200); err != nil {
		c.fail(w, r, http.StatusInternalServerError, "cannot read the flagged payments", err)
		return
	}
	if c.reviews != nil {
		if d.Reviews, err = c.reviews.Open(r.Context(), 200); err != nil {
			d.ReviewError = err.Error()
		}
	}
	c.render(w, r, http.StatusOK, "reviews", "Reviews", d)
}

// decideReview approves or denies a risk review through risk's queue
// (which audits it, as internal/dlq audits a replay).
func (c *Console) decideReview(w http.ResponseWriter, r *http.Request) {
	if c.reviews == nil {
		c.fail(w, r, http.StatusNotFound, "risk reviews are not built yet", nil)
		return
	}
	id, decision := r.PathValue("id"), r.PathValue("decision")
	actor := actorOf(r, sessionOf(r.Context()))
	var err error
	switch decision {
	case "approve":
		err = c.reviews.Approve(r.Context(), id, actor)
	case "deny":
		err = c.reviews.Deny(r.Context(), id, actor)
	default:
		c.fail(w, r, http.StatusBadRequest, "approve or deny", nil)
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusConflict, "review "+id+" not decided", err)
		return
	}
	c.flash(w, fmt.Sprintf("review %s: %sd", id, decision))
	http.Redirect(w, r, c.base+"/reviews", http.StatusSeeOther)
}

type refundsData struct {
	InFlight, Failed []store.RefundView
}

func (c *Console) refundsPage(w http.ResponseWriter, r *http.Request) {
	var d refundsData
	var err error
	if d.InFlight, err = c.store.RefundsInFlightView(r.Context(), 500); err == nil {
		d.Failed, err = c.store.RefundsFailedView(r.Context(), 200)
	}
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "cannot read the refunds", err)
		return
	}
	c.render(w, r, http.StatusOK, "refunds", "Refunds", d)
}

type reconData struct {
	Channel, Day string
	All          bool
	Runs         []schemas.ReconRun
	ByKind       map[string]int
	ByHeal       map[string]int
	CSV          string
}

// reconFilter reads the page's filter: the newest run of each channel-day
// unless all=1, like `paygate recon report`.
func reconFilter(r *http.Request) store.ReconRunFilter {
	q := r.URL.Query()
	return store.ReconRunFilter{Channel: q.Get("channel"), Day: q.Get("date"), Latest: q.Get("all") != "1", Limit: 200}
}

func (c *Console) reconPage(w http.ResponseWriter, r *http.Request) {
	f := reconFilter(r)
	runs, err := c.store.ReconReport(r.Context(), f, true)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "cannot read the reconciliation runs", err)
		return
	}
	d := reconData{Channel: f.Channel, Day: f.Day, All: !f.Latest, Runs: runs, ByKind: map[string]int{}, ByHeal: map[string]int{}}
	for _, run := range runs {
		for _, m := range run.Findings {
			d.ByKind[m.Kind]++
			if m.Heal != "" {
				d.ByHeal[m.Heal]++
			}
		}
	}
	d.CSV = c.base + "/recon.csv?" + r.URL.RawQuery
	c.render(w, r, http.StatusOK, "recon", "Reconciliation", d)
}

// reconCSV is `paygate recon report --format csv` (schemas.WriteReconCSV).
func (c *Console) reconCSV(w http.ResponseWriter, r *http.Request) {
	runs, err := c.store.ReconReport(r.Context(), reconFilter(r), true)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "cannot read the reconciliation runs", err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="paygate-recon.csv"`)
	if err := schemas.WriteReconCSV(w, runs); err != nil {
		c.log.Error("recon csv", "err", err)
	}
}

type dlqData struct {
	Available bool
	Topic     string
	Topics    []dlq.Size
	Records   []shownRecord
	Error     string
}

// shownRecord is a DLQ record for the page: its value cut and masked.
type shownRecord struct {
	dlq.Record
	Preview string
	Size    int
}

func showRecord(rec dlq.Record, n int) shownRecord {
	v := psp.Mask(rec.Value)
	if !utf8.ValidString(v) {
		v = fmt.Sprintf("(%d bytes, not text)", len(rec.Value))
	}
	if len(v) > n {
		v = v[:n] + "…"
	}
	return shownRecord{Record: rec, Preview: v, Size: len(rec.Value)}
}

func (c *Console) dlqPage(w http.ResponseWriter, r *http.Request) {
	d := dlqData{Available: c.dlq != nil, Topic: r.URL.Query().Get("topic")}
	if c.dlq == nil {
		c.render(w, r, http.StatusOK, "dlq", "Dead letters", d)
		return
	}
	var err error
	if d.Topics, err = c.dlq.Sizes(r.Context()); err != nil {
		d.Error = err.Error()
	}
	if d.Topic == "" {
		for _, t := range d.Topics {
			if t.Total > 0 {
				d.Topic = t.Topic
				break
			}
		}
	}
	if d.Topic != "" {
		if _, err := dlq.CheckTopic(d.Topic); err != nil {
			c.fail(w, r, http.StatusBadRequest, err.Error(), nil)
			return
		}
		recs, err := c.dlq.List(r.Context(), d.Topic, 100)
		if err != nil {
			d.Error = err.Error()
		}
		for _, rec := range recs {
			d.Records = append(d.Records, showRecord(rec, 160))
		}
	}
	c.render(w, r, http.StatusOK, "dlq", "Dead letters", d)
}

func (c *Console) dlqRecord(w http.ResponseWriter, r *http.Request) {
	if c.dlq == nil {
		c.fail(w, r, http.StatusNotFound, "dead letters are not available: this process has no Kafka", nil)
		return
	}
	p, err1 := strconv.Atoi(r.PathValue("partition"))
	off, err2 := strconv.ParseInt(r.PathValue("offset"), 10, 64)
	if err1 != nil || err2 != nil {
		c.fail(w, r, http.StatusBadRequest, "partition and offset are numbers", nil)
		return
	}
	rec, err := c.dlq.Get(r.Context(), r.PathValue("topic"), p, off)
	switch {
	case errors.Is(err, dlq.ErrNoRecord), errors.Is(err, dlq.ErrUnknownTopic):
		c.fail(w, r, http.StatusNotFound, err.Error(), nil)
		return
	case err != nil:
		c.fail(w, r, http.StatusInternalServerError, "cannot read the record", err)
		return
	}
	sr := showRecord(rec, 256<<10)
	var hs [][2]string
	for _, h := range rec.Headers {
		v := string(h.Value)
		if sensitiveHeader.MatchString(h.Key) {
			v = mask(v)
		}
		hs = append(hs, [2]string{h.Key, v})
	}
	c.render(w, r, http.StatusOK, "dlqrecord", "Dead letter", map[string]any{"Record": sr, "Headers": hs})
}

// dlqReplayOne is the console's door to dlq.Service.ReplayOne (the code
// `paygate dlq replay -record` runs), audited there.
func (c *Console) dlqReplayOne(w http.ResponseWriter, r *http.Request) {
	topic := r.PostFormValue("topic")
	p, err1 := strconv.Atoi(r.PostFormValue("partition"))
	off, err2 := strconv.ParseInt(r.PostFormValue("offset"), 10, 64)
	if c.dlq == nil || err1 != nil || err2 != nil {
		c.fail(w, r, http.StatusBadRequest, "replay needs a topic, a partition and an offset", nil)
		return
	}
	rec, err := c.dlq.ReplayOne(r.Context(), topic, p, off, actorOf(r, sessionOf(r.Context())))
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, dlq.ErrAlreadyReplayed) || errors.Is(err, dlq.ErrBusy) {
			status = http.StatusConflict
		} else if errors.Is(err, dlq.ErrNoRecord) || errors.Is(err, dlq.ErrUnknownTopic) {
			status = http.StatusNotFound
		}
		c.fail(w, r, status, "not replayed", err)
		return
	}
	c.flash(w, fmt.Sprintf("Replayed %d@%d (message %s) to %s.", p, off, rec.MessageID, topic))
	http.Redirect(w, r, c.base+"/dlq?topic="+url.QueryEscape(topic), http.StatusSeeOther)
}

// dlqReplayAll is the console's door to dlq.Service.Replay (the code
// `paygate dlq replay TOPIC` runs), audited there.
func (c *Console) dlqReplayAll(w http.ResponseWriter, r *http.Request) {
	topic := r.PostFormValue("topic")
	if c.dlq == nil {
		c.fail(w, r, http.StatusBadRequest, "dead letters are not available: this process has no Kafka", nil)
		return
	}
	res, err := c.dlq.Replay(r.Context(), topic, 0, actorOf(r, sessionOf(r.Context())))
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, dlq.ErrBusy) {
			status = http.StatusConflict
		} else if errors.Is(err, dlq.ErrUnknownTopic) {
			status = http.StatusNotFound
		}
		c.fail(w, r, status, "not replayed", err)
		return
	}
	msg := fmt.Sprintf("Replayed %d records from %s to %s.", res.Sent, res.DLQTopic, topic)
	if res.Skipped > 0 {
		msg += fmt.Sprintf(" Skipped %d replayed before.", res.Skipped)
	}
	c.flash(w, msg)
	http.Redirect(w, r, c.base+"/dlq?topic="+url.QueryEscape(topic), http.StatusSeeOther)
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request) {
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	entries, err := c.store.AuditLog(r.Context(), before, 100)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "cannot read the audit log", err)
		return
	}
	var next int64
	if len(entries) == 100 {
		next = entries[len(entries)-1].ID
	}
	c.render(w, r, http.StatusOK, "audit", "Audit log", map[string]any{"Entries": entries, "Next": next})
}
