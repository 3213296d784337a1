package deploy

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodeModel: whatever a MODELS bucket entry holds, decoding never panics,
// and what it accepts is a valid registration that encodes back to itself.
func FuzzDecodeModel(f *testing.F) {
	f.Add([]byte(`{"schema":"stagegate.model.v1","name":"acme-7b","base_url":"https://api.acme.example/v1","api_key_env":"ACME_KEY","timeout":"60s","max_concurrency":32}`))
	f.Add([]byte(`{"schema":"stagegate.model.v1","name":"m","base_url":"http://127.0.0.1:9090/v1","api_key_file":"/run/key"}`))
	f.Add([]byte(`{"schema":"stagegate.model.v2","name":"m"}`))
	f.Add([]byte(`{"schema":"stagegate.model.v1","name":"a b","base_url":"ftp://x"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeModel(b)
		if err != nil {
			return
		}
		if verr := m.Validate(); verr != nil {
			t.Fatalf("accepted an invalid registration %+v: %v", m, verr)
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := DecodeModel(again)
		if err != nil || m2.Name != m.Name || m2.BaseURL != m.BaseURL || m2.APIKeyEnv != m.APIKeyEnv {
			t.Fatalf("round trip: %+v → %+v (%v)", m, m2, err)
		}
	})
}

func TestDecodeModelBounds(t *testing.T) {
	big := `{"schema":"stagegate.model.v1","name":"m","base_url":"http://x/v1","upstream_model":"` + strings.Repeat("x", maxModelBytes) + `"}`
	if _, err := DecodeModel([]byte(big)); err == nil || !strings.Contains(err.Error(), "max") {
		t.Fatalf("a registration over %d bytes: %v", maxModelBytes, err)
	}
	if _, err := DecodeModel([]byte(`{"schema":"stagegate.model.v1","name":"m","base_url":"http://user:pw@x/v1"}`)); err == nil {
		t.Fatal("credentials in the base URL accepted")
	}
}
