package ingress

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/paygate/paygate/internal/router"
)

// RoutingHealth is routing's health as the router of this process sees it.
type RoutingHealth interface {
	Health() []router.HealthRow
}

// ServeRoutingHealth adds GET /v1/routing/health (DESIGN.md §11) to the
// API listener: per channel and segment of the policy in force, the
// success rate, samples, breaker and share. It is a read, signed (v2) as
// the mall's other reads are. Call it before Handler.
func (s *Server) ServeRoutingHealth(r RoutingHealth) { s.routing = r }

func (s *Server) routingHealth(c echo.Context) error {
	rows := s.routing.Health()
	if rows == nil {
		rows = []router.HealthRow{}
	}
	return c.JSON(http.StatusOK, map[string]any{"channels": rows})
}
