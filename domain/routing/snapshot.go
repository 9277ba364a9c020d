package routing

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// snapshotVersion is the snapshot format; a snapshot of another format is
// refused (its reader starts from the feedback topic instead).
const snapshotVersion = 1

type snapshotArm struct {
	Channel string         `json:"channel"`
	Segment string         `json:"segment"`
	Inits   []snapshotInit `json:"inits"`
	Outs    []snapshotOut  `json:"outs"`
}

type snapshotInit struct {
	Code string `json:"c"`
	At   int64  `json:"t"`
	OK   bool   `json:"ok,omitempty"`
}

type snapshotOut struct {
	ID      string `json:"id"`
	Code    string `json:"c"`
	Decided int64  `json:"t"`
	Outcome string `json:"o"`
}

type snapshot struct {
	Version int           `json:"version"`
	Seq     uint64        `json:"seq"`
	Arms    []snapshotArm `json:"arms"`
}

// Snapshot is the health's whole state as bytes, for RestoreHealth.
func (h *Health) Snapshot() ([]byte, error) {
	s := snapshot{Version: snapshotVersion, Seq: h.seq}
	arms := make([]Arm, 0, len(h.arms))
	for a := range h.arms {
		arms = append(arms, a)
	}
	slices.SortFunc(arms, func(a, b Arm) int {
		if a.Segment != b.Segment {
			return compareStrings(a.Segment, b.Segment)
		}
		return compareStrings(a.Channel, b.Channel)
	})
	for _, arm := range arms {
		a := h.arms[arm]
		sa := snapshotArm{Channel: arm.Channel, Segment: arm.Segment}
		for i := 0; i < a.inits.len(); i++ {
			e := a.inits.at(i)
			sa.Inits = append(sa.Inits, snapshotInit{Code: e.code, At: e.at.UnixNano(), OK: e.ok})
		}
		for i := 0; i < a.outs.len(); i++ {
			o := a.outs.at(i)
			sa.Outs = append(sa.Outs, snapshotOut{ID: o.id, Code: o.code, Decided: o.decided.UnixNano(), Outcome: o.outcome.s})
		}
		s.Arms = append(s.Arms, sa)
	}
	return json.Marshal(s)
}

// RestoreHealth rebuilds a health from a Snapshot.
func RestoreHealth(b []byte) (*Health, error) {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("routing health snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return nil, fmt.Errorf("routing health snapshot: format %d, this paygate reads %d", s.Version, snapshotVersion)
	}
	h := NewHealth()
	for _, sa := range s.Arms {
		a := &armState{initSeen: map[string]bool{}, outSeen: map[string]bool{}}
		for _, e := range sa.Inits {
			id := "routing/initiate/" + e.Code
			a.inits.push(initEntry{id: id, code: e.Code, at: time.Unix(0, e.At).UTC(), ok: e.OK}, initRing)
			a.initSeen[id] = true
		}
		for _, o := range sa.Outs {
			out, err := ParseOutcome(o.Outcome)
			if err != nil {
				return nil, fmt.Errorf("routing health snapshot: %w", err)
			}
			a.outs.push(outEntry{id: o.ID, code: o.Code, decided: time.Unix(0, o.Decided).UTC(), outcome: out}, outRing)
			a.outSeen[o.ID] = true
		}
		h.arms[Arm{Channel: sa.Channel, Segment: sa.Segment}] = a
	}
	h.seq = s.Seq
	return h, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
