package psp

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The caller gets the whole answer, however long, while the evidence keeps
// its first maxEvidence bytes, masked and marked as cut.
func TestTransportRecordsAPrefixAndPassesTheWholeAnswer(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), (5<<20)/16) // 5 MiB: more than the old 4 MiB cap
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			_, _ = w.Write([]byte(`{"status":"ok","secret":"s3cr3t"}`))
			return
		}
		_, _ = w.Write(big) // no Content-Length: streamed
	}))
	defer srv.Close()
	c := &http.Client{Transport: &Transport{Channel: "x"}}
	var got []Exchange
	ctx := WithRecorder(context.Background(), "download", func(e Exchange) { got = append(got, e) })
	for _, path := range []string{"/big", "/small"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if path == "/big" && !bytes.Equal(body, big) {
			t.Fatalf("caller got %d bytes of %d", len(body), len(big))
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d exchanges recorded", len(got))
	}
	if !strings.HasSuffix(got[0].ResponseBody, "…(truncated)") || len(got[0].ResponseBody) > maxEvidence+32 {
		t.Errorf("evidence of a big answer: %d bytes, suffix %q", len(got[0].ResponseBody), got[0].ResponseBody[len(got[0].ResponseBody)-20:])
	}
	if strings.Contains(got[1].ResponseBody, "s3cr3t") || strings.Contains(got[1].ResponseBody, "truncated") {
		t.Errorf("evidence of a small answer: %q", got[1].ResponseBody)
	}
}
