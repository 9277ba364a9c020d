// Package migrations holds paygate's numbered SQL migrations, embedded in
// the binary and applied with goose (`paygate migrate`, and by `dev`).
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/pressly/goose/v3"
)

// Files are the embedded migrations.
//
//go:embed *.sql
var Files embed.FS

// Up applies every pending migration to db.
func Up(ctx context.Context, db *sql.DB) error {
	// Out of order: the team reserves migration numbers ahead and lands
	// them as each piece is done, so a database may have 00010 before
	// 00007 exists. Each migration stands alone (its own tables), so
	// applying a lower number later is safe.
	p, err := goose.NewProvider(goose.DialectPostgres, db, Files, goose.WithAllowOutofOrder(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations up: %w", err)
	}
	return nil
}
