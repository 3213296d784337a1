package gateway

import "errors"

// SetKeys replaces the key table while the gateway serves: requests already
// past authentication keep their principal, the next ones see the new table.
// The swap is one atomic store, so the request path never takes a lock for it.
// A revoked key stops working as soon as a table without it is set.
func (g *Gateway) SetKeys(k *Keys) error {
	if k == nil {
		return errors.New("gateway: keys are required")
	}
	g.keys.Store(k)
	return nil
}

// Len is the number of keys in the table.
func (k *Keys) Len() int { return len(k.m) }
