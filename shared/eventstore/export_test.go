package eventstore

// GroupWaiting is how many appends and loads wait in g, for tests that wait for it.
func GroupWaiting(g *GroupCommit) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.waiting)
}
