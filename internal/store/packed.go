package store

import "github.com/lib/pq"

// packed is many byte strings sent as one bytea parameter, each cut back
// out in SQL by its place in it: substring($n::bytea FROM from FOR len),
// wrapped in convert_from(…, 'UTF8') for a text column, which checks the
// encoding as a text[] parameter would have been checked.
//
// As a bytea[] lib/pq spells every byte in hex and quotes it, and as a
// text[] it quotes and escapes every string: twice the bytes or more for
// PostgreSQL to parse back, and, with the message buffer grown around
// them, a quarter of what a batch allocated. One []byte goes as it is
// (the store's connections send parameters in binary).
type packed struct {
	bytes     []byte
	from, len []int64 // from counts from 1, as substring does
}

func pack[T ~string | ~[]byte](items []T) packed {
	size := 0
	for _, it := range items {
		size += len(it)
	}
	p := packed{bytes: make([]byte, 0, size), from: make([]int64, len(items)), len: make([]int64, len(items))}
	for i, it := range items {
		p.from[i], p.len[i] = int64(len(p.bytes))+1, int64(len(it))
		p.bytes = append(p.bytes, it...)
	}
	return p
}

// args are the packed strings as three parameters: the bytes, the
// starts and the lengths.
func (p packed) args() []any {
	return []any{p.bytes, pq.Array(p.from), pq.Array(p.len)}
}
