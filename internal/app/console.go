package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/paygate/paygate/internal/console"
	"github.com/paygate/paygate/internal/dlq"
	"github.com/paygate/paygate/internal/store"
)

// The account `paygate dev` gives the console when PAYGATE_CONSOLE_USERS
// is unset, and prints.
const (
	DevConsoleUser     = "dev"
	DevConsolePassword = "dev-console-password"
)

// ConsolePath is where the console is mounted on the admin listener.
const ConsolePath = "/console"

// startConsole mounts the operator console on the admin listener, when
// accounts are configured: never on a listener the ingress's public or API
// routes share (that would put it in reach of PSPs, buyers or the mall).
func (a *App) startConsole(files ChannelsFile) error {
	cfg := a.Config.Console
	if len(cfg.Users) == 0 {
		return nil
	}
	if a.AdminURL == "" {
		a.Log.Warn("console not served: this process has no admin listener (PAYGATE_ADMIN_ADDR)")
		return nil
	}
	for _, e := range a.endpoints {
		if e.admin && len(e.kinds) > 0 {
			return fmt.Errorf("console: the admin listener %s is shared with the ingress's %s routes; give it an address of its own (PAYGATE_ADMIN_ADDR) to serve the console", e.addr, e.name())
		}
	}
	if a.Store == nil {
		return errors.New("console: this process has no database (the console needs DATABASE_URL)")
	}
	var d *dlq.Service
	if len(a.Brokers) > 0 {
		var err error
		if d, err = dlq.New(dlq.Config{Brokers: a.Brokers, Transport: a.Kafka.Transport()}, a.Store, a.Log); err != nil {
			return err
		}
		a.stops = append(a.stops, d.Close)
	}
	var infos []console.ChannelInfo
	for _, e := range files.Channels {
		info := console.ChannelInfo{Name: e.Name, Kind: e.Kind, Enabled: e.Enabled, Weight: e.Weight, Countries: e.Countries,
			Currencies: e.Currencies, Methods: e.Methods}
		if ch, ok := a.Channels[e.Name]; ok {
			c := ch.Capabilities()
			info.PartialRefund, info.Settlement, info.ConfirmByQuery = c.PartialRefund, c.Settlement, c.ConfirmByQuery
		}
		infos = append(infos, info)
	}
	deps := console.Deps{Store: a.Store, DLQ: d, Channels: infos, Log: a.Log}
	if r := a.Router; r != nil {
		deps.Health = func(context.Context) ([]console.ChannelHealth, error) {
			var out []console.ChannelHealth
			for _, h := range r.Health() {
				out = append(out, console.ChannelHealth{Channel: h.Channel, Segment: h.Segment, SuccessRate: h.SuccessRate,
					Samples: h.Samples, Breaker: h.Breaker, BreakerReason: h.BreakerReason, Share: h.Share, Pending: h.Pending,
					Initiates: h.Initiates, InitiateFailures: h.InitiateFailures})
			}
			return out, nil
		}
	}
	deps.Reviews = reviewQueue{a.Store}
	cfg.BasePath, cfg.Brokers, cfg.Transport = ConsolePath, a.Brokers, a.Kafka.Transport()
	con, err := console.New(cfg, deps)
	if err != nil {
		return err
	}
	a.HandleAdmin(ConsolePath+"/", con.Handler())
	a.HandleAdmin(ConsolePath, con.Handler())
	a.goRun("console", con.Run)
	a.ConsoleURL = a.AdminURL + ConsolePath + "/"
	a.Log.Info("console listening", "url", a.ConsoleURL)
	return nil
}

// reviewQueue is risk's review queue as the console shows and decides it:
// the store's pending reviews, each named by its order (as
// POST /v1/risk/reviews/{order_id} and `paygate risk review` name it),
// and the store's one decision, which audits itself.
type reviewQueue struct{ st *store.Store }

func (q reviewQueue) Open(ctx context.Context, limit int) ([]console.Review, error) {
	rs, err := q.st.Reviews(ctx, true, limit)
	if err != nil {
		return nil, err
	}
	out := make([]console.Review, 0, len(rs))
	for _, r := range rs {
		cr := console.Review{ID: r.OrderID, OrderID: r.OrderID, Score: float64(r.Score), CreatedAt: r.CreatedAt, RulesVer: fmt.Sprintf("rules v%d", r.RulesVersion),
			Description: fmt.Sprintf("held request %s; %s by default at %s", r.MessageID, r.Default, r.ExpiresAt.UTC().Format(time.RFC3339))}
		for _, m := range r.Matched {
			cr.Rules = append(cr.Rules, fmt.Sprintf("%s (+%d)", m.Rule, m.Points))
		}
		if p, err := q.st.Payment(ctx, r.OrderID); err == nil {
			cr.Amount, cr.Currency = p.Amount, p.Currency
		}
		out = append(out, cr)
	}
	return out, nil
}

func (q reviewQueue) Approve(ctx context.Context, orderID string, actor store.Actor) error {
	_, err := q.st.DecideReview(ctx, orderID, true, actor, "decided in the console")
	return err
}

func (q reviewQueue) Deny(ctx context.Context, orderID string, actor store.Actor) error {
	_, err := q.st.DecideReview(ctx, orderID, false, actor, "decided in the console")
	return err
}
