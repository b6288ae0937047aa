package replay

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/auditbus/auditbus/sinks"
)

// TestJobFileKeepsWithin: a job's narrowing survives its job file, so a
// resumed or retried job replays no more than its starter could read; an
// empty list (nothing allowed) stays empty, not absent.
func TestJobFileKeepsWithin(t *testing.T) {
	for _, w := range []sinks.Within{
		{},
		{SourcePrefixes: []string{"/shop", "/cart"}},
		{TypePrefixes: []string{}},
		{SourcePrefixes: []string{}, TypePrefixes: []string{"com.example."}},
	} {
		b, err := json.Marshal(Request{Filter: sinks.Query{Route: "r", Within: w}}.wire())
		if err != nil {
			t.Fatal(err)
		}
		var back requestJSON
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if got := back.Filter.filter().Within; !reflect.DeepEqual(got, w) {
			t.Errorf("%+v came back as %+v from %s", w, got, b)
		}
	}
}
