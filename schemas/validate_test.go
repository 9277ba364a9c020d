package schemas

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// invalidExamples lists, for every file under examples/<schema>/invalid/,
// the problems Validate must report: each entry is a prefix of one
// problem ("<pointer>: <start of message>"), and there must be exactly as
// many problems as entries. A file missing from this table fails the test,
// so a new invalid example always states what it is invalid for.
var invalidExamples = map[string][]string{
	"pay-request/invalid/amount-exponent.json":            {"/amount: must be a plain integer"},
	"pay-request/invalid/amount-float.json":               {"/amount: must be integer, got number 19.99"},
	"pay-request/invalid/amount-integral-float.json":      {"/amount: must be a plain integer"},
	"pay-request/invalid/amount-negative.json":            {"/amount: must be at least 1, got -1999"},
	"pay-request/invalid/amount-null.json":                {"/amount: must be integer, got null"},
	"pay-request/invalid/amount-string.json":              {`/amount: must be integer, got string "1999"`},
	"pay-request/invalid/amount-too-large.json":           {"/amount: must be at most 900719925474099"},
	"pay-request/invalid/amount-zero.json":                {"/amount: must be at least 1, got 0"},
	"pay-request/invalid/billing-country-lowercase.json":  {"/billing_country: must match"},
	"pay-request/invalid/buyer-email-bad.json":            {"/buyer/email: must match"},
	"pay-request/invalid/buyer-id-too-long.json":          {"/buyer/id: must be at most 64 characters"},
	"pay-request/invalid/buyer-ip-bad.json":               {"/buyer/ip: must be an IPv4 address or an IPv6 address"},
	"pay-request/invalid/buyer-not-object.json":           {"/buyer: must be object"},
	"pay-request/invalid/card-fingerprint-space.json":     {"/card_fingerprint: must match"},
	"pay-request/invalid/buyer-unknown-field.json":        {"/buyer/phone: unknown field"},
	"pay-request/invalid/channel-bad.json":                {"/channel: must match"},
	"pay-request/invalid/country-lowercase.json":          {"/country: must match"},
	"pay-request/invalid/currency-lowercase.json":         {`/currency: must match ^[A-Z]{3}$, got "usd"`},
	"pay-request/invalid/currency-missing.json":           {"/currency: missing"},
	"pay-request/invalid/currency-symbol.json":            {"/currency: must match"},
	"pay-request/invalid/description-too-long.json":       {"/description: must be at most 255 characters"},
	"pay-request/invalid/method-uppercase.json":           {"/method: must match"},
	"pay-request/invalid/not-an-object.json":              {"(root): must be object, got array"},
	"pay-request/invalid/order-id-empty.json":             {"/order_id: must match"},
	"pay-request/invalid/order-id-leading-dash.json":      {"/order_id: must match"},
	"pay-request/invalid/order-id-space.json":             {"/order_id: must match"},
	"pay-request/invalid/order-id-too-long.json":          {"/order_id: must match"},
	"pay-request/invalid/return-url-ftp.json":             {"/return_urls/failure: must match"},
	"pay-request/invalid/return-url-missing-pending.json": {"/return_urls/pending: missing"},
	"pay-request/invalid/return-url-relative.json":        {"/return_urls/success: must be an absolute URL"},
	"pay-request/invalid/return-url-too-long.json":        {"/return_urls/pending: must be at most 2048 characters"},
	"pay-request/invalid/return-urls-missing.json":        {"/return_urls: missing"},
	"pay-request/invalid/return-urls-unknown-field.json":  {"/return_urls/cancel: unknown field"},
	"pay-request/invalid/syntax-error.json":               {"(root): invalid JSON after 38 bytes"},
	"pay-request/invalid/typo-field.json":                 {"/amount: missing", "/amout: unknown field"},
	"pay-request/invalid/unknown-field.json":              {"/amout: unknown field"},
	"pay-session/invalid/channel-uppercase.json":          {"/channel: must match"},
	"pay-session/invalid/expires-at-not-rfc3339.json":     {"/expires_at: must be an RFC 3339 date-time"},
	"pay-session/invalid/failed-empty-reason.json":        {"/reason: must not be empty"},
	"pay-session/invalid/form-value-number.json":          {"/form/amount: must be string, got number 1999"},
	"pay-session/invalid/order-id-missing.json":           {"/order_id: missing"},
	"pay-session/invalid/pay-url-relative.json":           {"/pay_url: must be an absolute URL"},
	"pay-session/invalid/rejected-missing-reason.json":    {"/reason: missing"},
	"pay-session/invalid/session-missing-pay-url.json":    {"/pay_url: missing"},
	"pay-session/invalid/type-missing.json":               {"/type: missing"},
	"pay-session/invalid/type-unknown.json":               {"/type: must be one of"},
	"psp-callback/invalid/body-not-base64.json":           {"/body: must be base64 encoded"},
	"psp-callback/invalid/channel-uppercase.json":         {"/channel: must match"},
	"psp-callback/invalid/headers-not-array.json":         {"/headers/Content-Type: must be array"},
	"psp-callback/invalid/id-missing.json":                {"/id: missing"},
	"psp-callback/invalid/kind-unknown.json":              {"/kind: must be one of"},
	"psp-callback/invalid/method-lowercase.json":          {"/method: must match"},
	"psp-callback/invalid/path-relative.json":             {"/path: must match"},
	"psp-callback/invalid/received-at-missing.json":       {"/received_at: missing"},
	"psp-callback/invalid/received-at-no-zone.json":       {"/received_at: must be an RFC 3339 date-time"},
	"psp-callback/invalid/received-at-unix.json":          {"/received_at: must be string, got number"},
	"payment-event/invalid/amount-float.json":             {"/amount: must be integer, got number 19.99"},
	"payment-event/invalid/amount-zero.json":              {"/amount: must be at least 1"},
	"payment-event/invalid/currency-lowercase.json":       {"/currency: must match"},
	"payment-event/invalid/failed-missing-reason.json":    {"/reason: missing"},
	"payment-event/invalid/order-id-number.json":          {"/order_id: must be string, got number 1001"},
	"payment-event/invalid/paid-at-bad.json":              {"/paid_at: must be an RFC 3339 date-time"},
	"payment-event/invalid/paid-missing-paid-at.json":     {"/paid_at: missing"},
	"payment-event/invalid/transaction-code-missing.json": {"/transaction_code: missing"},
	"payment-event/invalid/type-unknown.json":             {"/type: must be one of"},
	"pay-session/invalid/session-missing-transaction-code-channel.json": {
		"/channel: missing", "/transaction_code: missing",
	},
	"psp-callback/invalid/status-probe-missing-transaction-code.json": {"/transaction_code: missing"},
	"refund-request/invalid/amount-float.json":                        {"/amount: must be integer, got number 5.5"},
	"refund-request/invalid/amount-zero.json":                         {"/amount: must be at least 1, got 0"},
	"refund-request/invalid/currency-missing.json":                    {"/currency: missing"},
	"refund-request/invalid/refund-id-bad.json":                       {"/refund_id: must match"},
	"refund-request/invalid/refund-id-missing.json":                   {"/refund_id: missing"},
	"refund-request/invalid/transaction-code-empty.json":              {"/transaction_code: must not be empty"},
	"refund-request/invalid/unknown-field.json":                       {"/amout: unknown field"},
	"recon-record/invalid/record-missing-amount.json":                 {"/amount: missing"},
	"recon-record/invalid/amount-float.json":                          {"/amount: must be integer, got number 19.99"},
	"recon-record/invalid/day-not-date.json":                          {"/day: must be"},
	"recon-record/invalid/side-unknown.json":                          {"/side: must be one of"},
	"recon-mismatch/invalid/kind-unknown.json":                        {"/kind: must be one of"},
	"recon-mismatch/invalid/ours-amount-string.json":                  {`/ours/amount: must be integer, got string "19.99"`},
	"recon-mismatch/invalid/run-id-missing.json":                      {"/run_id: missing"},
	"refund-result/invalid/amount-negative.json":                      {"/amount: must be at least 1, got -500"},
	"refund-result/invalid/failed-missing-error.json":                 {"/error: missing"},
	"refund-result/invalid/finished-at-missing.json":                  {"/finished_at: missing"},
	"refund-result/invalid/status-unknown.json":                       {"/status: must be one of"},
	"routing-feedback/invalid/unknown-outcome.json":                   {"/outcome: must be one of"},
	"routing-feedback/invalid/no-channel.json":                        {"/channel: missing"},
	"risk-review/invalid/decision-unknown.json":                       {"/decision: must be one of"},
	"risk-review/invalid/decision-missing.json":                       {"/decision: missing"},
}

func TestValidExamples(t *testing.T) {
	for _, name := range schemaNames {
		files, err := filepath.Glob(filepath.Join("examples", name, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Errorf("%s: no valid examples", name)
		}
		for _, f := range files {
			doc, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(name, doc); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
}

func TestInvalidExamples(t *testing.T) {
	seen := make(map[string]bool)
	for _, name := range schemaNames {
		files, err := filepath.Glob(filepath.Join("examples", name, "invalid", "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Errorf("%s: no invalid examples", name)
		}
		for _, f := range files {
			key := filepath.ToSlash(strings.TrimPrefix(f, "examples"+string(filepath.Separator)))
			seen[key] = true
			want, ok := invalidExamples[key]
			if !ok {
				t.Errorf("%s: not in invalidExamples; say which problems it must cause", key)
				continue
			}
			doc, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := problemsOf(t, name, doc)
			if got == nil {
				t.Errorf("%s: validated, want %q", key, want)
				continue
			}
			if !matches(got, want) {
				t.Errorf("%s:\n got %q\nwant %q (prefixes)", key, got, want)
			}
		}
	}
	for key := range invalidExamples {
		if !seen[key] {
			t.Errorf("invalidExamples has %s, which does not exist", key)
		}
	}
}

// problemsOf validates doc and returns its problems, nil if it is valid.
// Any error other than a *ValidationError fails the test.
func problemsOf(t *testing.T, schema string, doc []byte) []string {
	t.Helper()
	err := Validate(schema, doc)
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate(%s): %v (%T), want a *ValidationError", schema, err, err)
	}
	if ve.Schema != schema {
		t.Errorf("ValidationError.Schema = %q, want %q", ve.Schema, schema)
	}
	if len(ve.Problems) == 0 {
		t.Errorf("ValidationError without problems")
	}
	return ve.Problems
}

// matches reports whether got has exactly one problem per prefix in want,
// in order (both are sorted).
func matches(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !strings.HasPrefix(got[i], want[i]) {
			return false
		}
	}
	return true
}

func TestValidateProblems(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
	}{
		{
			name: "several problems are flattened and sorted",
			doc: `{"order_id": "A1001", "amount": 19.99, "country": "US", "buyer": {"ip": "::zz"},
				"return_urls": {"success": "https://shop.example/ok", "failure": "https://shop.example/fail"}}`,
			want: []string{
				"/amount: must be integer, got number 19.99",
				`/buyer/ip: must be an IPv4 address or an IPv6 address, got "::zz"`,
				"/currency: missing",
				"/return_urls/pending: missing",
			},
		},
		{
			name: "pointer tokens are escaped",
			doc:  `{"order_id": "A1", "amount": 1, "currency": "USD", "country": "US", "a/b~c": 1, "return_urls": {"success": "https://s.example/", "failure": "https://s.example/", "pending": "https://s.example/"}}`,
			want: []string{"/a~1b~0c: unknown field"},
		},
		{
			name: "long values are cut",
			doc:  `{"order_id": "A1", "amount": 1, "currency": "USD", "country": "US", "channel": "` + strings.Repeat("x", 100) + `", "return_urls": {"success": "https://s.example/", "failure": "https://s.example/", "pending": "https://s.example/"}}`,
			want: []string{`/channel: must match ^[a-z0-9_-]{1,32}$, got "` + strings.Repeat("x", 64) + `…"`},
		},
		{name: "empty document", doc: "", want: []string{"(root): invalid JSON after 0 bytes: unexpected end of JSON input"}},
		{name: "trailing data", doc: `{} {}`, want: []string{"(root): invalid JSON after 4 bytes: invalid character '{' after top-level value"}},
		{name: "null", doc: `null`, want: []string{"(root): must be object, got null"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problemsOf(t, PayRequestSchema, []byte(tt.doc))
			if !matches(got, tt.want) {
				t.Errorf("\n got %q\nwant %q (prefixes)", got, tt.want)
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	err := Validate(PayRequestSchema, []byte(`{"amount": 19.99}`))
	want := "invalid pay-request: /amount: must be integer, got number 19.99; /country: missing; " +
		"/currency: missing; /order_id: missing; /return_urls: missing"
	if err == nil || err.Error() != want {
		t.Errorf("Error() = %v\nwant %s", err, want)
	}
}

func TestValidateUnknownSchema(t *testing.T) {
	err := Validate("pay-requests", []byte(`{}`))
	if !errors.Is(err, ErrUnknownSchema) {
		t.Errorf("Validate(unknown) = %v, want ErrUnknownSchema", err)
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		t.Errorf("Validate(unknown) is a ValidationError; it is a programming error, not a bad document")
	}
}

// TestValidateConcurrent runs Validate from many goroutines (meaningful
// under -race): the compiled schemas are shared.
func TestValidateConcurrent(t *testing.T) {
	good, err := os.ReadFile("examples/pay-request/design-11.json")
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte(`{"order_id": "A1001", "amount": 19.99}`)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if err := Validate(PayRequestSchema, good); err != nil {
					t.Error(err)
					return
				}
				if Validate(PayRequestSchema, bad) == nil {
					t.Error("invalid document validated")
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestGoTypesValidate marshals realistic values of the Go message types
// with encoding/json and validates them: the types and the schemas cannot
// drift apart without this failing.
func TestGoTypesValidate(t *testing.T) {
	paidAt := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	expires := time.Date(2026, 11, 25, 10, 15, 0, 123456789, time.FixedZone("CET", 3600))
	urls := ReturnURLs{
		Success: "https://shop.example/ok",
		Failure: "https://shop.example/fail",
		Pending: "https://shop.example/wait",
	}
	tests := []struct {
		name   string
		schema string
		v      any
	}{
		{"pay request", PayRequestSchema, PayRequest{
			OrderID: "A1001", Amount: 1999, Currency: "USD", Country: "US",
			Method: "card", Description: "Phone case",
			Buyer:      Buyer{ID: "u42", Email: "a@example.com", IP: "203.0.113.7", Device: "iPhone15,2"},
			ReturnURLs: urls, Channel: "sim",
		}},
		{"pay request with the risk fields", PayRequestSchema, PayRequest{
			OrderID: "A1002", Amount: 1999, Currency: "USD", Country: "US",
			Buyer:          Buyer{ID: "u42", IP: "203.0.113.7", IPCountry: "AU"},
			BillingCountry: "US", CardFingerprint: "fp_1MxQk2eZvKYlo2C", BankAccount: "ba_9c1e4b", ReturnURLs: urls,
		}},
		{"pay request, only required fields", PayRequestSchema, PayRequest{
			OrderID: "shop:2026-11-25.7", Amount: 500, Currency: "JPY", Country: "JP", ReturnURLs: urls,
		}},
		{"pay session", PaySessionSchema, PaySession{
			Type: SessionCreated, OrderID: "A1001", TransactionCode: "T261125100000123ABCDEFGH",
			Channel: "sim", PayURL: "http://127.0.0.1:8090/pay/T261125100000123ABCDEFGH",
			Token: "tok_9f8e7d", Form: map[string]string{"reference": "T261125100000123ABCDEFGH"},
			ExpiresAt: &expires,
		}},
		{"pay session rejected", PaySessionSchema, PaySession{
			Type: SessionRejected, OrderID: "A1001", Reason: "currency XTS is not enabled",
		}},
		{"pay session failed", PaySessionSchema, PaySession{
			Type: SessionFailed, OrderID: "A1001", TransactionCode: "T261125100000123ABCDEFGH",
			Channel: "sim", Reason: "psp: timeout after 3 attempts",
		}},
		{"async callback", PSPCallbackSchema, RawCallback{
			ID: "cb-01JDQ5X7Y8Z9", Channel: "sim", Kind: "async", Method: "POST", Path: "/v1/callbacks/sim",
			Query:      "v=2",
			Headers:    map[string][]string{"Content-Type": {"application/json"}, "X-Sim-Signature": {"t=1,v1=ab"}},
			Body:       []byte("{\"reference\":\"T261125100000123ABCDEFGH\",\"status\":\"paid\"}\x00\xff"),
			ReceivedAt: time.Now(),
		}},
		{"sync callback", PSPCallbackSchema, RawCallback{
			ID: "cb-01JDQ5X8AAAA", Channel: "sim", Kind: "sync", Method: "GET", Path: "/v1/return/sim",
			Query: "ref=T261125100000123ABCDEFGH", ReceivedAt: paidAt,
		}},
		{"status probe", PSPCallbackSchema, RawCallback{
			ID: "probe-01JDQ60000", Channel: "sim", Kind: "status_probe",
			ReceivedAt: paidAt, TransactionCode: "T261125100000123ABCDEFGH",
		}},
		{"paid", PaymentEventSchema, PaymentEvent{
			Type: EventPaid, OrderID: "A1001", Amount: 1999, Currency: "USD", Channel: "sim",
			TransactionCode: "T261125100000123ABCDEFGH", PSPReference: "sim_pay_7Q2WX9", PaidAt: &paidAt,
		}},
		{"failed", PaymentEventSchema, PaymentEvent{
			Type: EventFailed, OrderID: "A1001", Amount: 1999, Currency: "USD", Channel: "sim",
			TransactionCode: "T261125100000123ABCDEFGH", Reason: "declined: do not honour",
		}},
		{"refund request", RefundRequestSchema, RefundRequest{
			RefundID: "fin-0001", OrderID: "A1001", Amount: 500, Currency: "USD", Reason: "customer returned one item",
		}},
		{"duplicate payment refund request", RefundRequestSchema, RefundRequest{
			RefundID: "dup-T261125100200999STUVWXYZ-sim_pay_7Q2WY1", OrderID: "A1001", TransactionCode: "T261125100200999STUVWXYZ",
			Amount: 1999, Currency: "USD", Reason: ReasonDuplicatePayment,
		}},
		{"refund succeeded", RefundResultSchema, RefundResult{
			RefundID: "fin-0001", OrderID: "A1001", TransactionCode: "T261125100000123ABCDEFGH", Channel: "sim", Amount: 500,
			Currency: "USD", Status: RefundSucceeded, PSPReference: "sr_0a1b", Reason: "customer", FinishedAt: paidAt,
		}},
		{"refund refused, unknown order", RefundResultSchema, RefundResult{
			RefundID: "fin-0002", OrderID: "B1", Amount: 500, Currency: "USD", Status: RefundFailed,
			Error: "refund fin-0002: order B1: unknown order", FinishedAt: paidAt,
		}},
		{"duplicate detected", PaymentEventSchema, PaymentEvent{
			Type: EventDuplicateDetected, OrderID: "A1001", Amount: 1999, Currency: "USD", Channel: "sim",
			TransactionCode: "T261125100200999STUVWXYZ", PSPReference: "sim_pay_7Q2WY1", PaidAt: &paidAt,
			Reason: "order already paid by T261125100000123ABCDEFGH",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(tt.schema, doc); err != nil {
				t.Errorf("%s\n%v", doc, err)
			}
		})
	}
}

// TestGoTypesMatchSchemaProperties checks, field by field, that every JSON
// field of a Go message type is a property of its schema and the other way
// round, and that every field the schema requires is one the Go type always
// writes (no omitempty). Nested structs are checked against nested object
// schemas.
func TestGoTypesMatchSchemaProperties(t *testing.T) {
	types := map[string]reflect.Type{
		PayRequestSchema:      reflect.TypeFor[PayRequest](),
		PaySessionSchema:      reflect.TypeFor[PaySession](),
		PSPCallbackSchema:     reflect.TypeFor[RawCallback](),
		PaymentEventSchema:    reflect.TypeFor[PaymentEvent](),
		RefundRequestSchema:   reflect.TypeFor[RefundRequest](),
		RefundResultSchema:    reflect.TypeFor[RefundResult](),
		ReconRecordSchema:     reflect.TypeFor[ReconRecord](),
		ReconMismatchSchema:   reflect.TypeFor[ReconMismatch](),
		RoutingFeedbackSchema: reflect.TypeFor[RoutingFeedback](),
		RiskReviewSchema:      reflect.TypeFor[RiskReviewDecision](),
	}
	if len(types) != len(schemaNames) {
		t.Fatalf("types covers %d schemas, there are %d", len(types), len(schemaNames))
	}
	for _, name := range schemaNames {
		compareObject(t, name, loadSchema(t, name), types[name])
	}
}

func compareObject(t *testing.T, where string, sch map[string]any, typ reflect.Type) {
	t.Helper()
	props, _ := sch["properties"].(map[string]any)
	fields := make(map[string]reflect.StructField)
	always := make(map[string]bool)
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		jsonName, opts, _ := strings.Cut(tag, ",")
		if jsonName == "-" || !f.IsExported() {
			continue
		}
		if jsonName == "" {
			jsonName = f.Name
		}
		fields[jsonName] = f
		always[jsonName] = !strings.Contains(opts, "omitempty")
	}
	for p := range props {
		if _, ok := fields[p]; !ok {
			t.Errorf("%s: schema property %q has no field in %s", where, p, typ)
		}
	}
	for n, f := range fields {
		p, ok := props[n].(map[string]any)
		if !ok {
			t.Errorf("%s: %s.%s (json %q) is not a schema property", where, typ, f.Name, n)
			continue
		}
		if ft := f.Type; ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]() {
			compareObject(t, where+"/"+n, p, ft)
		}
	}
	req, _ := sch["required"].([]any)
	for _, r := range req {
		if !always[r.(string)] {
			t.Errorf("%s: schema requires %q but %s may omit it", where, r, typ)
		}
	}
}

func loadSchema(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := schemaFiles.ReadFile(name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var sch map[string]any
	if err := json.Unmarshal(b, &sch); err != nil {
		t.Fatal(err)
	}
	return sch
}

// TestSchemaFiles checks the conventions every schema file follows: draft
// 2020-12, its $id, and shared definitions ($defs of one name) identical in
// every file, since each file is self-contained for the mall's tools.
func TestSchemaFiles(t *testing.T) {
	defs := make(map[string]any)
	defFrom := make(map[string]string)
	for _, name := range schemaNames {
		sch := loadSchema(t, name)
		if got := sch["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema %v", name, got)
		}
		if got, want := sch["$id"], "https://paygate.dev/schemas/"+name+".v1.json"; got != want {
			t.Errorf("%s: $id %v, want %s", name, got, want)
		}
		d, _ := sch["$defs"].(map[string]any)
		for k, v := range d {
			if prev, ok := defs[k]; ok && !reflect.DeepEqual(prev, v) {
				t.Errorf("$defs/%s differs between %s.json and %s.json", k, defFrom[k], name)
				continue
			}
			defs[k], defFrom[k] = v, name
		}
	}
	embedded, err := schemaFiles.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(embedded) != len(schemaNames) || len(onDisk) != len(schemaNames) {
		t.Errorf("%d schema names, %d embedded files, %d *.json files: add new schemas to all three",
			len(schemaNames), len(embedded), len(onDisk))
	}
}

// TestTopics checks Topics against the Topic* constants declared in
// messages.go (read from the source, so a new constant cannot be forgotten):
// each appears once, and so does its dead-letter topic.
func TestTopics(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "messages.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "Topic") {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					t.Fatalf("%s is not a string literal", n.Name)
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				declared = append(declared, v)
			}
		}
	}
	if len(declared) != 9 {
		t.Errorf("found %d Topic constants, want 9 (DESIGN.md §3 and routing's feedback); update this test if a topic was added", len(declared))
	}
	got := Topics()
	count := make(map[string]int)
	for _, topic := range got {
		count[topic]++
	}
	for _, topic := range declared {
		if !strings.HasPrefix(topic, "paygate.") || !strings.Contains(topic, ".v") {
			t.Errorf("topic %q does not follow paygate.<what>.v<major>", topic)
		}
		for _, want := range []string{topic, DLQ(topic)} {
			if count[want] != 1 {
				t.Errorf("Topics() has %q %d times, want once", want, count[want])
			}
		}
	}
	if len(got) != 2*len(declared) {
		t.Errorf("Topics() has %d entries, want %d: %q", len(got), 2*len(declared), got)
	}
	if slices.Contains(got, "") {
		t.Errorf("Topics() has an empty topic")
	}
}

func BenchmarkValidatePayRequest(b *testing.B) {
	doc, err := os.ReadFile("examples/pay-request/design-11.json")
	if err != nil {
		b.Fatal(err)
	}
	if err := Validate(PayRequestSchema, doc); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(PayRequestSchema, doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidatePayRequestInvalid(b *testing.B) {
	doc := []byte(`{"order_id": "A1001", "amount": 19.99, "currency": "usd", "country": "US",
		"return_urls": {"success": "/ok", "failure": "https://shop.example/fail"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if Validate(PayRequestSchema, doc) == nil {
			b.Fatal("validated")
		}
	}
}
