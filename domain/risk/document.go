package risk

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/paygate/paygate/domain/jsondoc"
)

// Parse reads a risk rules document (docs/risk.md) strictly: an unknown
// or repeated field, a value of the wrong type or out of range is a
// FieldError naming the field by its path.
func Parse(doc []byte) (*Rules, error) {
	r, err := parse(doc)
	return r, jsondoc.Named(err, "risk rules")
}

func parse(doc []byte) (*Rules, error) {
	if err := jsondoc.Check(doc, maxDocumentBytes); err != nil {
		return nil, err
	}
	r := &Rules{}
	err := jsondoc.Object("", doc, jsondoc.Fields{
		"name": func(path string, raw json.RawMessage) error {
			if err := jsondoc.String(path, raw, &r.Name); err != nil {
				return err
			}
			if len(r.Name) > 200 {
				return ferr(path, "at most 200 characters")
			}
			return nil
		},
		"thresholds": func(path string, raw json.RawMessage) error {
			t := &r.Thresholds
			return jsondoc.Object(path, raw, jsondoc.Fields{
				"review": func(path string, raw json.RawMessage) error { return jsondoc.Int(path, raw, &t.Review) },
				"deny":   func(path string, raw json.RawMessage) error { return jsondoc.Int(path, raw, &t.Deny) },
			}, "deny")
		},
		"review": func(path string, raw json.RawMessage) error {
			rv := &r.Review
			return jsondoc.Object(path, raw, jsondoc.Fields{
				"expires_after": func(path string, raw json.RawMessage) error { return jsondoc.Duration(path, raw, &rv.ExpiresAfter) },
				"default": func(path string, raw json.RawMessage) error {
					var s string
					if err := jsondoc.String(path, raw, &s); err != nil {
						return err
					}
					switch s {
					case "approve":
						rv.Default = Allow
					case "deny":
						rv.Default = Deny
					default:
						return ferr(path, "%q: approve or deny", s)
					}
					return nil
				},
			})
		},
		"limits": func(path string, raw json.RawMessage) error {
			return jsondoc.Array(path, raw, maxRules, func(path string, raw json.RawMessage) error {
				var l Limit
				err := jsondoc.Object(path, raw, jsondoc.Fields{
					"id":        func(path string, raw json.RawMessage) error { return jsondoc.String(path, raw, &l.ID) },
					"currency":  func(path string, raw json.RawMessage) error { return jsondoc.String(path, raw, &l.Currency) },
					"countries": func(path string, raw json.RawMessage) error { return jsondoc.Strings(path, raw, 300, &l.Countries) },
					"methods":   func(path string, raw json.RawMessage) error { return jsondoc.Strings(path, raw, 100, &l.Methods) },
					"min":       func(path string, raw json.RawMessage) error { return jsondoc.Int64(path, raw, &l.Min) },
					"max":       func(path string, raw json.RawMessage) error { return jsondoc.Int64(path, raw, &l.Max) },
					"points":    func(path string, raw json.RawMessage) error { return jsondoc.Int(path, raw, &l.Points) },
				}, "id", "currency", "points")
				r.Limits = append(r.Limits, l)
				return err
			})
		},
		"velocity": func(path string, raw json.RawMessage) error {
			return jsondoc.Array(path, raw, maxRules, func(path string, raw json.RawMessage) error {
				var v Velocity
				err := jsondoc.Object(path, raw, jsondoc.Fields{
					"id":     func(path string, raw json.RawMessage) error { return jsondoc.String(path, raw, &v.ID) },
					"key":    func(path string, raw json.RawMessage) error { return keyKind(path, raw, &v.Key) },
					"window": func(path string, raw json.RawMessage) error { return jsondoc.Duration(path, raw, &v.Window) },
					"of": func(path string, raw json.RawMessage) error {
						var s string
						if err := jsondoc.String(path, raw, &s); err != nil {
							return err
						}
						for _, m := range measures {
							if m.s == s {
								v.Of = m
								return nil
							}
						}
						return ferr(path, "%q: one of requests, events, duplicate_payment, amount_mismatch, large_refund", s)
					},
					"max_count": func(path string, raw json.RawMessage) error {
						v.HasMaxCount = true
						return jsondoc.Int64(path, raw, &v.MaxCount)
					},
					"max_amount": func(path string, raw json.RawMessage) error {
						v.HasMaxAmount = true
						return jsondoc.Int64(path, raw, &v.MaxAmount)
					},
					"currency": func(path string, raw json.RawMessage) error { return jsondoc.String(path, raw, &v.Currency) },
					"points":   func(path string, raw json.RawMessage) error { return jsondoc.Int(path, raw, &v.Points) },
				}, "id", "key", "window", "points")
				r.Velocity = append(r.Velocity, v)
				return err
			})
		},
		"block": func(path string, raw json.RawMessage) error { return listEntries(path, raw, &r.Block) },
		"allow": func(path string, raw json.RawMessage) error { return listEntries(path, raw, &r.Allow) },
		"ip_country": func(path string, raw json.RawMessage) error {
			r.IPCountry = &IPCountryRule{}
			return jsondoc.Object(path, raw, jsondoc.Fields{
				"id":     func(path string, raw json.RawMessage) error { return jsondoc.String(path, raw, &r.IPCountry.ID) },
				"points": func(path string, raw json.RawMessage) error { return jsondoc.Int(path, raw, &r.IPCountry.Points) },
			}, "points")
		},
		"new_buyer": func(path string, raw json.RawMessage) error {
			n := &NewBuyerRule{}
			r.NewBuyer = n
			return jsondoc.Object(path, raw, jsondoc.Fields{
				"id":  func(path string, raw json.RawMessage) error { return jsondoc.String(path, raw, &n.ID) },
				"key": func(path string, raw json.RawMessage) error { return keyKind(path, raw, &n.Key) },
				"first_seen_within": func(path string, raw json.RawMessage) error {
					return jsondoc.Duration(path, raw, &n.FirstSeenWithin)
				},
				"above":  func(path string, raw json.RawMessage) error { return amounts(path, raw, &n.Above) },
				"points": func(path string, raw json.RawMessage) error { return jsondoc.Int(path, raw, &n.Points) },
			}, "id", "first_seen_within", "above", "points")
		},
		"ip_countries": func(path string, raw json.RawMessage) error {
			return jsondoc.Array(path, raw, maxListEntries, func(path string, raw json.RawMessage) error {
				var c IPCountry
				err := jsondoc.Object(path, raw, jsondoc.Fields{
					"cidr": func(path string, raw json.RawMessage) error { return prefix(path, raw, &c.Prefix) },
					"country": func(path string, raw json.RawMessage) error {
						return jsondoc.String(path, raw, &c.Country)
					},
				}, "cidr", "country")
				r.IPCountries = append(r.IPCountries, c)
				return err
			})
		},
		"outside": func(path string, raw json.RawMessage) error {
			o := &OutsidePolicy{}
			r.Outside = o
			return jsondoc.Object(path, raw, jsondoc.Fields{
				"timeout": func(path string, raw json.RawMessage) error { return jsondoc.Duration(path, raw, &o.Timeout) },
				"on_failure": func(path string, raw json.RawMessage) error {
					var s string
					if err := jsondoc.String(path, raw, &s); err != nil {
						return err
					}
					for _, f := range []OnFailure{FailOpen, FailReview, FailClosed} {
						if f.s == s {
							o.OnFailure = f
							return nil
						}
					}
					return ferr(path, "%q: open (our decision stands), review, or closed (deny)", s)
				},
			})
		},
		"events": func(path string, raw json.RawMessage) error {
			return jsondoc.Object(path, raw, jsondoc.Fields{
				"large_refund_above": func(path string, raw json.RawMessage) error {
					return amounts(path, raw, &r.Events.LargeRefundAbove)
				},
			})
		},
	}, "thresholds")
	if err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

func keyKind(path string, raw json.RawMessage, dst *KeyKind) error {
	var s string
	if err := jsondoc.String(path, raw, &s); err != nil {
		return err
	}
	for _, k := range KeyKinds {
		if k.s == s {
			*dst = k
			return nil
		}
	}
	return ferr(path, "%q: one of buyer_id, email, ip, ip_net, device, card_fingerprint, bank_account", s)
}

func prefix(path string, raw json.RawMessage, dst *netip.Prefix) error {
	var s string
	if err := jsondoc.String(path, raw, &s); err != nil {
		return err
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return ferr(path, "%q: not a network such as 198.51.100.0/24", s)
	}
	*dst = p.Masked()
	return nil
}

// amounts reads {"USD": 50000, ...}: minor units per currency.
func amounts(path string, raw json.RawMessage, dst *map[string]int64) error {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || raw[0] != '{' {
		return ferr(path, "must be an object of currency: minor units, not %s", jsondoc.Kind(raw))
	}
	out := map[string]int64{}
	fields := jsondoc.Fields{}
	for cur := range members {
		fields[cur] = func(path string, raw json.RawMessage) error {
			var v int64
			if err := jsondoc.Int64(path, raw, &v); err != nil {
				return err
			}
			out[cur] = v
			return nil
		}
	}
	if err := jsondoc.Object(path, raw, fields); err != nil {
		return err
	}
	*dst = out
	return nil
}

// listKinds are the keys a list entry may have, one of them.
var listKinds = []string{KeyBuyerID.s, KeyEmail.s, ListEmailDomain, KeyIP.s, ListCIDR, ListCountry, KeyDevice.s,
	KeyCardFingerprint.s, KeyBankAccount.s}

func listEntries(path string, raw json.RawMessage, dst *[]ListEntry) error {
	return jsondoc.Array(path, raw, maxListEntries, func(path string, raw json.RawMessage) error {
		var e ListEntry
		fields := jsondoc.Fields{
			"reason":  func(path string, raw json.RawMessage) error { return jsondoc.String(path, raw, &e.Reason) },
			"expires": func(path string, raw json.RawMessage) error { return jsondoc.Time(path, raw, &e.Expires) },
		}
		for _, k := range listKinds {
			fields[k] = func(path string, raw json.RawMessage) error {
				if e.Kind != "" {
					return ferr(path, "an entry has one of %s; this one has %s too", strings.Join(listKinds, ", "), e.Kind)
				}
				e.Kind = k
				if k == ListCIDR {
					if err := prefix(path, raw, &e.Prefix); err != nil {
						return err
					}
					e.Value = e.Prefix.String()
					return nil
				}
				if err := jsondoc.String(path, raw, &e.Value); err != nil {
					return err
				}
				if k == KeyEmail.s || k == ListEmailDomain {
					e.Value = strings.ToLower(strings.TrimSpace(e.Value))
				}
				return nil
			}
		}
		err := jsondoc.Object(path, raw, fields, "reason")
		if err == nil && e.Kind == "" {
			err = ferr(path, "one of %s", strings.Join(listKinds, ", "))
		}
		*dst = append(*dst, e)
		return err
	})
}

// Document is the rules' JSON form as Parse reads it, every default
// written out: `paygate risk show` prints it, and Parse(Document()) gives
// the same rules back.
func (r *Rules) Document() ([]byte, error) {
	if r.Thresholds.Deny == 0 {
		return nil, errors.New("risk rules: not validated")
	}
	type limit struct {
		ID        string   `json:"id"`
		Currency  string   `json:"currency"`
		Countries []string `json:"countries,omitempty"`
		Methods   []string `json:"methods,omitempty"`
		Min       int64    `json:"min,omitempty"`
		Max       int64    `json:"max,omitempty"`
		Points    int      `json:"points"`
	}
	type velocity struct {
		ID        string `json:"id"`
		Key       string `json:"key"`
		Window    string `json:"window"`
		Of        string `json:"of"`
		MaxCount  *int64 `json:"max_count,omitempty"`
		MaxAmount *int64 `json:"max_amount,omitempty"`
		Currency  string `json:"currency,omitempty"`
		Points    int    `json:"points"`
	}
	type ipCountry struct {
		CIDR    string `json:"cidr"`
		Country string `json:"country"`
	}
	type newBuyer struct {
		ID              string           `json:"id"`
		Key             string           `json:"key"`
		FirstSeenWithin string           `json:"first_seen_within"`
		Above           map[string]int64 `json:"above"`
		Points          int              `json:"points"`
	}
	type doc struct {
		Name       string `json:"name,omitempty"`
		Thresholds struct {
			Review int `json:"review"`
			Deny   int `json:"deny"`
		} `json:"thresholds"`
		Review struct {
			ExpiresAfter string `json:"expires_after"`
			Default      string `json:"default"`
		} `json:"review"`
		Limits      []limit             `json:"limits,omitempty"`
		Velocity    []velocity          `json:"velocity,omitempty"`
		Block       []map[string]string `json:"block,omitempty"`
		Allow       []map[string]string `json:"allow,omitempty"`
		IPCountry   *IPCountryRule      `json:"ip_country,omitempty"`
		NewBuyer    *newBuyer           `json:"new_buyer,omitempty"`
		IPCountries []ipCountry         `json:"ip_countries,omitempty"`
		Outside     *struct {
			Timeout   string `json:"timeout"`
			OnFailure string `json:"on_failure"`
		} `json:"outside,omitempty"`
		Events *struct {
			LargeRefundAbove map[string]int64 `json:"large_refund_above,omitempty"`
		} `json:"events,omitempty"`
	}
	var d doc
	d.Name = r.Name
	d.Thresholds.Review, d.Thresholds.Deny = r.Thresholds.Review, r.Thresholds.Deny
	d.Review.ExpiresAfter = r.Review.ExpiresAfter.String()
	d.Review.Default = "deny"
	if r.Review.Default == Allow {
		d.Review.Default = "approve"
	}
	for _, l := range r.Limits {
		d.Limits = append(d.Limits, limit(l))
	}
	for _, v := range r.Velocity {
		vv := velocity{ID: v.ID, Key: v.Key.s, Window: v.Window.String(), Of: v.Of.s, Currency: v.Currency, Points: v.Points}
		if v.HasMaxCount {
			vv.MaxCount = &v.MaxCount
		}
		if v.HasMaxAmount {
			vv.MaxAmount = &v.MaxAmount
		}
		d.Velocity = append(d.Velocity, vv)
	}
	entries := func(es []ListEntry) []map[string]string {
		var out []map[string]string
		for _, e := range es {
			m := map[string]string{e.Kind: e.Value, "reason": e.Reason}
			if !e.Expires.IsZero() {
				m["expires"] = e.Expires.UTC().Format(time.RFC3339)
			}
			out = append(out, m)
		}
		return out
	}
	d.Block, d.Allow = entries(r.Block), entries(r.Allow)
	if r.IPCountry != nil {
		c := *r.IPCountry
		d.IPCountry = &c
	}
	if n := r.NewBuyer; n != nil {
		d.NewBuyer = &newBuyer{ID: n.ID, Key: n.Key.s, FirstSeenWithin: n.FirstSeenWithin.String(), Above: n.Above, Points: n.Points}
	}
	for _, c := range r.IPCountries {
		d.IPCountries = append(d.IPCountries, ipCountry{CIDR: c.Prefix.String(), Country: c.Country})
	}
	if o := r.Outside; o != nil {
		d.Outside = &struct {
			Timeout   string `json:"timeout"`
			OnFailure string `json:"on_failure"`
		}{o.Timeout.String(), o.OnFailure.s}
	}
	if len(r.Events.LargeRefundAbove) > 0 {
		d.Events = &struct {
			LargeRefundAbove map[string]int64 `json:"large_refund_above,omitempty"`
		}{r.Events.LargeRefundAbove}
	}
	return json.MarshalIndent(d, "", "  ")
}
