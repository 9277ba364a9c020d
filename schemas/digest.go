package schemas

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
)

// Digest is the SHA-256 of a JSON document's canonical form: its value
// written again with every object's members sorted by key, no
// whitespace between tokens, each string in one escaping and each number
// as written. Two documents have one digest exactly when they hold the
// same JSON value: spacing, member order and how a string is escaped
// ("\u00e9" or "é") do not count; a member present or absent, 1 or 1.0,
// do. It does not depend on the Go types of the messages, so a field a
// later version adds leaves the digest of earlier documents as it was.
//
// paygate tells a retry from a conflict with it: a pay request whose
// message id (its Idempotency-Key) was already used is the same request
// again if its digest is the first one's. Give it a document that
// CheckJSON accepts (a repeated key would be decided by the decoder).
func Digest(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("digest: %w", err)
	}
	canon, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("digest: %w", err)
	}
	sum := sha256.Sum256(canon)
	return sum[:], nil
}
