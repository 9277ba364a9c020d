package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// DocumentKind names a kind of operator document: each kind has its own
// versions, counted from 1.
type DocumentKind string

// The operator documents paygate keeps.
const (
	// DocRouting is the routing policy (docs/routing.md).
	DocRouting DocumentKind = "routing"
	// DocRisk is the risk rules (docs/risk.md).
	DocRisk DocumentKind = "risk"
)

// Document is one stored version of an operator document.
type Document struct {
	Kind      DocumentKind `db:"kind"`
	Version   int64        `db:"version"`
	Document  []byte       `db:"document"`
	SHA256    string       `db:"sha256"`
	AppliedBy string       `db:"applied_by"`
	Source    string       `db:"source"`
	Note      string       `db:"note"`
	AppliedAt time.Time    `db:"applied_at"`
}

const documentColumns = `kind, version, document, sha256, applied_by, source, note, applied_at`

// documentsLock is the first key of the advisory lock that serialises
// the appliers of one kind (the second is the kind's hash), so that two
// applying the same document at once store it once and versions never
// collide.
const documentsLock = 0x646f63 // "doc"

const latestDocumentQuery = `SELECT ` + documentColumns + ` FROM documents WHERE kind = $1 ORDER BY version DESC LIMIT 1`

// ApplyDocument stores doc as the new version of its kind, with who
// applied it, from where and why. validate must accept the document first
// (the caller parses it): a refused document is not stored and the
// version in force stays. A document identical to the version in force is
// not stored again: that version is returned with created false.
func (s *Store) ApplyDocument(ctx context.Context, kind DocumentKind, doc []byte, by, source, note string, validate func([]byte) error) (d Document, created bool, err error) {
	if err := validate(doc); err != nil {
		return d, false, err
	}
	sum := sha256.Sum256(doc)
	hash := hex.EncodeToString(sum[:])
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		created = false
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, documentsLock, string(kind)); err != nil {
			return fmt.Errorf("lock %s documents: %w", kind, err)
		}
		err := tx.GetContext(ctx, &d, latestDocumentQuery, string(kind))
		switch {
		case err == nil && d.SHA256 == hash:
			return nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("latest %s document: %w", kind, err)
		}
		created = true
		return tx.GetContext(ctx, &d, `INSERT INTO documents (kind, version, document, sha256, applied_by, source, note)
VALUES ($1, coalesce((SELECT max(version) FROM documents WHERE kind = $1), 0) + 1, $2, $3, $4, $5, $6)
RETURNING `+documentColumns, string(kind), doc, hash, by, source, note)
	})
	if err != nil {
		return d, false, fmt.Errorf("apply %s document: %w", kind, err)
	}
	return d, created, nil
}

// LatestDocument is the version of kind in force, ErrNotFound if none was
// ever applied.
func (s *Store) LatestDocument(ctx context.Context, kind DocumentKind) (Document, error) {
	var d Document
	if err := s.db.GetContext(ctx, &d, latestDocumentQuery, string(kind)); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return d, ErrNotFound
		}
		return d, fmt.Errorf("latest %s document: %w", kind, err)
	}
	return d, nil
}

// DocumentVersion is one stored version of kind, ErrNotFound if there is
// none.
func (s *Store) DocumentVersion(ctx context.Context, kind DocumentKind, version int64) (Document, error) {
	var d Document
	if err := s.db.GetContext(ctx, &d, `SELECT `+documentColumns+` FROM documents WHERE kind = $1 AND version = $2`, string(kind), version); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return d, ErrNotFound
		}
		return d, fmt.Errorf("%s document %d: %w", kind, version, err)
	}
	return d, nil
}

// Documents is the audit trail of kind: the newest versions first, up to
// limit, documents included.
func (s *Store) Documents(ctx context.Context, kind DocumentKind, limit int) ([]Document, error) {
	var ds []Document
	if err := s.db.SelectContext(ctx, &ds, `SELECT `+documentColumns+` FROM documents WHERE kind = $1 ORDER BY version DESC LIMIT $2`,
		string(kind), limit); err != nil {
		return nil, fmt.Errorf("%s documents: %w", kind, err)
	}
	return ds, nil
}
