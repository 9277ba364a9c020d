package ingress

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/schemas"
)

// ReconStore is what the ingress reads of reconciliation: runs as
// reports show them.
type ReconStore interface {
	ReconReport(ctx context.Context, f store.ReconRunFilter, findings bool) ([]schemas.ReconRun, error)
}

// reconRuns is GET /v1/recon/runs: reconciliation runs, newest first,
// for finance and operators. Query parameters: channel, date
// (YYYY-MM-DD), latest=true (only the newest finished run of each
// channel-day), mismatches=true (each run's findings), limit (1..1000,
// default 100). Like every read of the API listener it must carry
// finance's v2 signature (signedRead).
func (s *Server) reconRuns(c echo.Context) error {
	q := c.QueryParams()
	f := store.ReconRunFilter{Channel: q.Get("channel"), Day: q.Get("date"), Latest: q.Get("latest") == "true"}
	if f.Day != "" {
		if _, err := time.Parse(time.DateOnly, f.Day); err != nil {
			return fail(http.StatusBadRequest, "invalid_request", "date must be YYYY-MM-DD")
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return fail(http.StatusBadRequest, "invalid_request", "limit must be in 1..1000")
		}
		f.Limit = n
	}
	runs, err := s.store.ReconReport(c.Request().Context(), f, q.Get("mismatches") == "true")
	if err != nil {
		return err
	}
	if runs == nil {
		runs = []schemas.ReconRun{}
	}
	return c.JSON(http.StatusOK, map[string]any{"runs": runs})
}
