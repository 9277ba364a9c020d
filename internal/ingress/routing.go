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

// ServeRoutingHealth adds GET /v1/routing/health (DESIGN.md §11): per
// channel and segment of the policy in force, the success rate, samples,
// breaker and share. It is signed as the mall's other calls are.
func (s *Server) ServeRoutingHealth(r RoutingHealth) {
	s.echo.GET("/v1/routing/health", func(c echo.Context) error {
		if _, err := s.authenticate(c, nil); err != nil {
			return err
		}
		rows := r.Health()
		if rows == nil {
			rows = []router.HealthRow{}
		}
		return c.JSON(http.StatusOK, map[string]any{"channels": rows})
	})
}
