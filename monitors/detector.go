package monitors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/stagegate/stagegate/events"
)

// Detector inspects interactions for one kind of risk. Implementations must be
// safe for concurrent use (the runner calls Detect from several workers) and
// deterministic: the same interaction must give the same findings in the same
// order, because finding ids derive from their index.
type Detector interface {
	// Name is the detector's subject token (letters, digits, '-', '_'), e.g. "pii".
	Name() string
	// Version changes whenever the detector's output may change.
	Version() string
	// Detect inspects one interaction (prompt = request messages, and the
	// response) and returns its findings with Detector, DetectorVersion, Category,
	// Severity, Score, Threshold, Spans and Explanation set. The runner fills
	// Schema, ID, InteractionID, Trial, Model and CreatedAt.
	Detect(ctx context.Context, in *events.Interaction) ([]events.Finding, error)
}

// FindingID is the deterministic id of the index-th finding a detector version
// reported on an interaction, so redelivery reproduces the same id.
func FindingID(interactionID, detector, version string, index int) string {
	h := sha256.New()
	h.Write([]byte(interactionID))
	h.Write([]byte{0})
	h.Write([]byte(detector))
	h.Write([]byte{0})
	h.Write([]byte(version))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, int64(index), 10))
	var sum [sha256.Size]byte
	return "fnd_" + hex.EncodeToString(h.Sum(sum[:0])[:12])
}
