package consumers

// Buffered is how many messages the runner's reader has fetched and not
// yet handed to it: a test's barrier for "the rest is fetched meanwhile".
func (r *Runner) Buffered() int {
	if rd := r.reader.Load(); rd != nil {
		return int(rd.Stats().QueueLength)
	}
	return 0
}
