package adyen

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// The report below is shaped like Adyen's Payment accounting report:
// its standard columns, in their documented order, from "Payment
// accounting report", Report structure > Standard columns
// (https://docs.adyen.com/reporting/invoice-reconciliation/payment-accounting-report:
// Company Account, Merchant Account, Psp Reference, Merchant Reference,
// Payment Method, Booking Date "YYYY-MM-DD HH:MM:SS", TimeZone "the ISO
// code for your time zone setting", Main Currency, Main Amount, Record
// Type, then the amounts per stage in payment (PC) and settlement (SC)
// currency); record types as "Reports and the payments lifecycle" lists
// them (https://docs.adyen.com/reporting/reports-and-the-payments-lifecycle:
// Received, Authorised, SentForSettle, Settled, SentForRefund, Refunded,
// …). One payment has one line per status change. The file name and the
// download URL are as Adyen's REPORT_AVAILABLE webhook and report
// download guide give them (https://docs.adyen.com/reporting/automatically-get-reports):
// https://ca-test.adyen.com/reports/download/MerchantAccount/{account}/payment_accounting_report_YYYY_MM_DD.csv.
// References and amounts are ours.
const reportHeader = "Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,Booking Date,TimeZone," +
	"Main Currency,Main Amount,Record Type,Payment Currency,Received (PC),Authorised (PC),Captured (PC)," +
	"Settlement Currency,Payable (SC),Commission (SC),Markup (SC),Scheme Fees (SC),Interchange (SC)," +
	"Processing Fee Currency,Processing Fee (FC),User Name,Payment Method Variant,Modification Merchant Reference\n"

const reportBody = reportHeader +
	// A EUR payment through its lifecycle: only SentForSettle is listed.
	"PaygateCo,PaygateECOM,8815658961765250,T261124100142000EURPAY01,visa,2026-11-24 10:01:40,CET,EUR,10.00,Received,EUR,10.00,,,,,,,,,,,ws@Company.PaygateCo,visa,\n" +
	"PaygateCo,PaygateECOM,8815658961765250,T261124100142000EURPAY01,visa,2026-11-24 10:01:42,CET,EUR,10.00,Authorised,EUR,-10.00,10.00,,,,,,,,,,ws@Company.PaygateCo,visa,\n" +
	"PaygateCo,PaygateECOM,8815658961765250,T261124100142000EURPAY01,visa,2026-11-24 10:01:43,CET,EUR,10.00,SentForSettle,EUR,,-10.00,10.00,,,,,,,,,ws@Company.PaygateCo,visa,\n" +
	// A zero-decimal currency (JPY: Adyen and ISO 4217 agree on 0).
	"PaygateCo,PaygateECOM,8515658961765261,T261124113000000JPYPAY02,mc,2026-11-24 11:30:00,CET,JPY,1500,SentForSettle,JPY,,-1500,1500,,,,,,,,,ws@Company.PaygateCo,mccredit,\n" +
	// CLP: Adyen writes 2 decimals, ISO 4217 has 0.
	"PaygateCo,PaygateECOM,8515658961765272,T261124120000000CLPPAY03,visa,2026-11-24 12:00:00,CET,CLP,25000.00,SentForSettle,CLP,,-25000.00,25000.00,,,,,,,,,ws@Company.PaygateCo,visa,\n" +
	// Settled (the payout, days after the capture) and refunds are not payments of the day.
	"PaygateCo,PaygateECOM,8815658961765005,T261120090000000EURPAY00,visa,2026-11-24 04:00:00,CET,EUR,20.00,Settled,EUR,,,-20.00,EUR,19.70,0.30,,,,,,System,visa,\n" +
	"PaygateCo,PaygateECOM,8815658961765283,T261120090000000EURPAY00,visa,2026-11-24 13:00:00,CET,EUR,5.00,SentForRefund,EUR,,,,,,,,,,,,ws@Company.PaygateCo,visa,R-1001\n" +
	// Another merchant account of the company (a company-level report).
	"PaygateCo,PaygateRetail,8815658961765294,T261124140000000EURPAY04,visa,2026-11-24 14:00:00,CET,EUR,99.00,SentForSettle,EUR,,-99.00,99.00,,,,,,,,,ws@Company.PaygateCo,visa,\n" +
	// A merchant reference with a comma, quoted as RFC 4180 does.
	"PaygateCo,PaygateECOM,8815658961765305,\"T261124,QUOTED\",visa,2026-11-24 23:59:59,CET,EUR,0.01,SentForSettle,EUR,,-0.01,0.01,,,,,,,,,ws@Company.PaygateCo,visa,\n"

const reportPath = "/reports/download/MerchantAccount/PaygateECOM/payment_accounting_report_2026_11_24.csv"

type reportFake struct {
	mu     sync.Mutex
	reqs   []*http.Request
	status int
	body   string
	srv    *httptest.Server
}

func newReportFake(t *testing.T, status int, body string) *reportFake {
	f := &reportFake{status: status, body: body}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.reqs = append(f.reqs, r)
		status, body := f.status, f.body
		f.mu.Unlock()
		if status == http.StatusOK && r.URL.Path != reportPath {
			status, body = http.StatusNotFound, "not found"
		}
		w.Header().Set("Content-Type", "text/csv")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// cet is the account's time zone setting in the tests (winter: UTC+1).
var cet = time.FixedZone("CET", 3600)

var reportDay = time.Date(2026, 11, 24, 0, 0, 0, 0, cet)

func (f *reportFake) channel(t *testing.T, now time.Time, edit ...func(*ChannelConfig)) *Channel {
	return newTestChannel(t, append([]func(*ChannelConfig){func(c *ChannelConfig) {
		c.ReportBaseURL, c.Timeout = f.srv.URL+"/reports/download/MerchantAccount", 2*time.Second
		c.Now = func() time.Time { return now }
	}}, edit...)...)
}

func TestSettledPaymentsFromReport(t *testing.T) {
	f := newReportFake(t, http.StatusOK, reportBody)
	ch := f.channel(t, time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), func(c *ChannelConfig) {
		c.ReportUsername, c.ReportPassword = "report@Company.PaygateCo", "s3cret-report-pass"
	})
	var evidence []psp.Exchange
	ctx := psp.WithRecorder(context.Background(), "settlements", func(e psp.Exchange) { evidence = append(evidence, e) })
	p, err := ch.SettledPayments(ctx, reportDay, "")
	if err != nil {
		t.Fatalf("SettledPayments: %v", err)
	}
	want := []psp.SettlementRow{
		{TransactionCode: "T261124100142000EURPAY01", PSPReference: "8815658961765250", Amount: domain.MustMoney(1000, "EUR"),
			Status: domain.PSPSucceeded, SettledAt: time.Date(2026, 11, 24, 9, 1, 43, 0, time.UTC)},
		{TransactionCode: "T261124113000000JPYPAY02", PSPReference: "8515658961765261", Amount: domain.MustMoney(1500, "JPY"),
			Status: domain.PSPSucceeded, SettledAt: time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC)},
		{TransactionCode: "T261124120000000CLPPAY03", PSPReference: "8515658961765272", Amount: domain.MustMoney(25000, "CLP"),
			Status: domain.PSPSucceeded, SettledAt: time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC)},
		{TransactionCode: "T261124,QUOTED", PSPReference: "8815658961765305", Amount: domain.MustMoney(1, "EUR"),
			Status: domain.PSPSucceeded, SettledAt: time.Date(2026, 11, 24, 22, 59, 59, 0, time.UTC)},
	}
	if p.NextPage != "" || len(p.Rows) != len(want) {
		t.Fatalf("page %+v, want %d rows", p, len(want))
	}
	for i, r := range p.Rows {
		w := want[i]
		if r.TransactionCode != w.TransactionCode || r.PSPReference != w.PSPReference || r.Amount != w.Amount ||
			r.Status != w.Status || !r.SettledAt.Equal(w.SettledAt) {
			t.Errorf("row %d = %+v, want %+v", i, r, w)
		}
	}
	if len(f.reqs) != 1 {
		t.Fatalf("%d requests", len(f.reqs))
	}
	r := f.reqs[0]
	if r.Method != http.MethodGet || r.URL.Path != reportPath || r.URL.RawQuery != "" {
		t.Errorf("request %s %s", r.Method, r.URL)
	}
	if u, pw, ok := r.BasicAuth(); !ok || u != "report@Company.PaygateCo" || pw != "s3cret-report-pass" || r.Header.Get("X-API-Key") != "" {
		t.Errorf("auth %q %q %v, X-API-Key %q", u, pw, ok, r.Header.Get("X-API-Key"))
	}
	// The credentials travel in a header only: the evidence never holds them.
	if len(evidence) != 1 {
		t.Fatalf("%d exchanges recorded, want 1", len(evidence))
	}
	basic := base64.StdEncoding.EncodeToString([]byte("report@Company.PaygateCo:s3cret-report-pass"))
	for _, e := range evidence {
		all := e.URL + e.RequestBody + e.ResponseBody + e.Err
		for _, secret := range []string{"s3cret-report-pass", basic, "test_api_key"} {
			if strings.Contains(all, secret) {
				t.Errorf("evidence holds a credential: %+v", e)
			}
		}
		if e.StatusCode != 200 || !strings.Contains(e.URL, "payment_accounting_report_2026_11_24.csv") {
			t.Errorf("evidence %+v", e)
		}
	}
}

func TestSettledPaymentsWithAPIKey(t *testing.T) {
	f := newReportFake(t, http.StatusOK, reportBody)
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	if _, err := f.channel(t, now).SettledPayments(context.Background(), reportDay, ""); err != nil {
		t.Fatalf("SettledPayments: %v", err)
	}
	if k := f.reqs[0].Header.Get("X-API-Key"); k != "test_api_key" || f.reqs[0].Header.Get("Authorization") != "" {
		t.Errorf("X-API-Key %q (default: the API key), Authorization %q", k, f.reqs[0].Header.Get("Authorization"))
	}
	if _, err := f.channel(t, now, func(c *ChannelConfig) { c.ReportAPIKey = "report_key" }).SettledPayments(context.Background(), reportDay, ""); err != nil {
		t.Fatalf("SettledPayments: %v", err)
	}
	if k := f.reqs[1].Header.Get("X-API-Key"); k != "report_key" {
		t.Errorf("X-API-Key %q, want the report API key", k)
	}
}

func TestSettledPaymentsMalformed(t *testing.T) {
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	ours := "PaygateCo,PaygateECOM,8815658961765250,T1,visa,2026-11-24 10:01:43,CET,%s,%s,SentForSettle,EUR,,,,,,,,,,,,u,visa,\n"
	line := func(cur, amount string) string {
		return strings.Replace(strings.Replace(ours, "%s", cur, 1), "%s", amount, 1)
	}
	for name, body := range map[string]string{
		"empty":             "",
		"html login page":   "<html><body>Log in</body></html>\n",
		"no Record Type":    strings.Replace(reportHeader, ",Record Type", ",Kind", 1) + line("EUR", "1.00"),
		"ragged line":       reportHeader + "PaygateCo,PaygateECOM,8815658961765250,T1\n",
		"bad quote":         reportHeader + strings.Replace(line("EUR", "1.00"), ",T1,", `,"T1,`, 1),
		"three decimals":    reportHeader + line("EUR", "1.001"),
		"CLP with centavos": reportHeader + line("CLP", "1500.50"),
		"IDR with sen":      reportHeader + line("IDR", "15000.50"),
		"negative":          reportHeader + line("EUR", "-1.00"),
		"zero":              reportHeader + line("EUR", "0.00"),
		"unknown currency":  reportHeader + line("XYZ", "1.00"),
		"unknown zone":      reportHeader + strings.Replace(line("EUR", "1.00"), ",CET,", ",XX,", 1),
		"bad booking date":  reportHeader + strings.Replace(line("EUR", "1.00"), "2026-11-24 10:01:43", "24/11/2026 10:01", 1),
		"no reference":      reportHeader + strings.Replace(line("EUR", "1.00"), ",T1,", ",,", 1),
	} {
		f := newReportFake(t, http.StatusOK, body)
		_, err := f.channel(t, now).SettledPayments(context.Background(), reportDay, "")
		if !errors.Is(err, psp.ErrMalformed) || psp.IsTemporary(err) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	// Adyen's decimals that ISO 4217 lacks are read exactly when zero;
	// IDR written without decimals (Adyen: 0) is exact too.
	f := newReportFake(t, http.StatusOK, reportHeader+line("ISK", "1200.00")+line("IDR", "15000")+line("IDR", "15000.00"))
	p, err := f.channel(t, now).SettledPayments(context.Background(), reportDay, "")
	if err != nil || len(p.Rows) != 3 || p.Rows[0].Amount != domain.MustMoney(1200, "ISK") ||
		p.Rows[1].Amount != domain.MustMoney(1500000, "IDR") || p.Rows[2].Amount != p.Rows[1].Amount {
		t.Errorf("ISK/IDR: %+v, %v", p, err)
	}
}

func TestSettledPaymentsErrors(t *testing.T) {
	dayEnd := time.Date(2026, 11, 25, 0, 0, 0, 0, cet)
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		now       time.Time
		temporary bool
		is        error
	}{
		{"401", http.StatusUnauthorized, "<html>401 Unauthorized</html>", dayEnd.Add(10 * time.Hour), false, psp.ErrDeclined},
		{"403", http.StatusForbidden, "Forbidden", dayEnd.Add(10 * time.Hour), false, psp.ErrDeclined},
		{"500", http.StatusInternalServerError, "oops", dayEnd.Add(10 * time.Hour), true, nil},
		{"503", http.StatusServiceUnavailable, "", dayEnd.Add(10 * time.Hour), true, nil},
		{"404 before due", http.StatusNotFound, "", dayEnd.Add(DefaultReportGrace - time.Second), true, nil},
		{"404 after due", http.StatusNotFound, "", dayEnd.Add(DefaultReportGrace), false, psp.ErrNotFound},
		{"redirect", http.StatusFound, "", dayEnd.Add(10 * time.Hour), false, psp.ErrMalformed},
	} {
		f := newReportFake(t, tc.status, tc.body)
		_, err := f.channel(t, tc.now).SettledPayments(context.Background(), reportDay, "")
		if err == nil || psp.IsTemporary(err) != tc.temporary || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%s: %v, want temporary %v, %v", tc.name, err, tc.temporary, tc.is)
		}
		if strings.Contains(err.Error(), "test_api_key") {
			t.Errorf("%s: error holds the key: %v", tc.name, err)
		}
	}
	// A network error is temporary.
	ch := newTestChannel(t, func(c *ChannelConfig) {
		c.ReportBaseURL, c.Now = "http://127.0.0.1:1/reports", func() time.Time { return dayEnd.Add(time.Hour) }
	})
	if _, err := ch.SettledPayments(context.Background(), reportDay, ""); !psp.IsTemporary(err) {
		t.Errorf("connection refused: %v, want temporary", err)
	}
}

func TestSettledPaymentsDayNotOver(t *testing.T) {
	f := newReportFake(t, http.StatusOK, reportBody)
	ch := f.channel(t, time.Date(2026, 11, 24, 22, 59, 59, 0, time.UTC)) // 23:59:59 CET
	p, err := ch.SettledPayments(context.Background(), reportDay, "")
	if err != nil || len(p.Rows) != 0 || p.Rows == nil || p.NextPage != "" {
		t.Errorf("day not over: %+v, %v; want an empty list", p, err)
	}
	if len(f.reqs) != 0 {
		t.Errorf("%d requests for a day not over", len(f.reqs))
	}
	if _, err := ch.SettledPayments(context.Background(), reportDay, "2"); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("page 2: %v", err)
	}
}

// A redirect is never followed: the credentials go to the report host only.
func TestSettledPaymentsNoRedirect(t *testing.T) {
	var elsewhere int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere++ }))
	t.Cleanup(other.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+reportPath, http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	ch := newTestChannel(t, func(c *ChannelConfig) {
		c.ReportBaseURL = srv.URL + "/reports/download/MerchantAccount"
		c.Now = func() time.Time { return time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC) }
	})
	if _, err := ch.SettledPayments(context.Background(), reportDay, ""); err == nil || elsewhere != 0 {
		t.Errorf("redirect: %v, %d requests elsewhere", err, elsewhere)
	}
}

func TestReportConfig(t *testing.T) {
	base := func(edit func(*ChannelConfig)) ChannelConfig {
		c := ChannelConfig{APIKey: "k", MerchantAccount: "M", HMACKeys: []string{testKey}}
		edit(&c)
		return c
	}
	c := base(func(*ChannelConfig) {}).withDefaults()
	if c.ReportBaseURL != TestReportBaseURL || c.ReportAPIKey != "k" || c.ReportGrace != DefaultReportGrace {
		t.Errorf("test defaults %q %q %v", c.ReportBaseURL, c.ReportAPIKey, c.ReportGrace)
	}
	c = base(func(c *ChannelConfig) { c.Environment, c.LivePrefix = EnvLive, "1797a841fbb37ca7-AdyenDemo" }).withDefaults()
	if c.ReportBaseURL != LiveReportBaseURL {
		t.Errorf("live default %q", c.ReportBaseURL)
	}
	c = base(func(c *ChannelConfig) { c.ReportUsername, c.ReportPassword = "report@Company.C", "p" }).withDefaults()
	if c.ReportAPIKey != "" {
		t.Errorf("report user and API key both set: %q", c.ReportAPIKey)
	}
	for i, bad := range []ChannelConfig{
		base(func(c *ChannelConfig) { c.ReportUsername = "report@Company.C" }),
		base(func(c *ChannelConfig) { c.ReportPassword = "p" }),
		base(func(c *ChannelConfig) { c.ReportUsername, c.ReportPassword, c.ReportAPIKey = "u", "p", "k2" }),
		base(func(c *ChannelConfig) {
			c.ReportBaseURL = "https://u:p@ca-test.adyen.com/reports/download/MerchantAccount"
		}),
		base(func(c *ChannelConfig) { c.ReportBaseURL = "https://ca-test.adyen.com/reports?key=k" }),
		base(func(c *ChannelConfig) { c.ReportBaseURL = "ca-test.adyen.com" }),
		base(func(c *ChannelConfig) { c.ReportGrace = -time.Hour }),
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("config %d valid", i)
		}
	}
}

func TestReportSettings(t *testing.T) {
	ok := `{"api_key":"k","merchant_account":"M","hmac_keys":["00"],"report_base_url":"https://ca-test.adyen.com/reports/download/MerchantAccount",` +
		`"report_username":"report@Company.C","report_password":"p","report_grace":"36h"}`
	ch, err := FromSettings("adyen", json.RawMessage(ok))
	if err != nil {
		t.Fatalf("valid settings: %v", err)
	}
	if c := ch.(*Channel).cfg; c.ReportUsername != "report@Company.C" || c.ReportPassword != "p" || c.ReportGrace != 36*time.Hour || !ch.Capabilities().Settlement {
		t.Errorf("config %+v", c)
	}
	for _, bad := range []string{
		`{"api_key":"k","merchant_account":"M","hmac_keys":["00"],"report_username":"u"}`,
		`{"api_key":"k","merchant_account":"M","hmac_keys":["00"],"report_user":"u"}`,
		`{"api_key":"k","merchant_account":"M","hmac_keys":["00"],"report_api_key":"r","report_username":"u","report_password":"p"}`,
		`{"api_key":"k","merchant_account":"M","hmac_keys":["00"],"report_grace":"later"}`,
	} {
		if _, err := FromSettings("a", json.RawMessage(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
