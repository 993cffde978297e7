package invoke

import "testing"

func TestBodyPoolClasses(t *testing.T) {
	var p bodyPool
	for _, tc := range []struct{ n, wantCap int }{
		{0, 1 << 10}, {1, 1 << 10}, {1024, 1 << 10}, {1025, 2 << 10},
		{64 << 10, 64 << 10}, {maxPooledBody, maxPooledBody},
	} {
		b, h := p.get(tc.n)
		if len(b) != tc.n || cap(b) != tc.wantCap || h == nil {
			t.Errorf("get(%d): len %d cap %d handle %v, want cap %d", tc.n, len(b), cap(b), h != nil, tc.wantCap)
		}
		p.put(h)
	}
	if b, h := p.get(maxPooledBody + 1); len(b) != maxPooledBody+1 || h != nil {
		t.Errorf("an unpooled size: len %d, handle %v", len(b), h != nil)
	}
	p.put(nil) // harmless
}

func TestReleasedBodyIsReused(t *testing.T) {
	var p bodyPool
	b, h := p.get(3000)
	b[0] = 'x'
	r := &Response{Body: b, pool: &p, buf: h}
	r.Release()
	r.Release() // twice is harmless
	if r.Body != nil {
		t.Fatal("Body kept after Release")
	}
	// sync.Pool may drop items (e.g. under the race detector), so only
	// check that what comes back has the class's capacity.
	if b2, _ := p.get(2500); cap(b2) != 4<<10 || len(b2) != 2500 {
		t.Fatalf("got len %d cap %d", len(b2), cap(b2))
	}
	(*Response)(nil).Release()
}
