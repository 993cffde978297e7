package dlqops

// SetReplayHooks makes a replay stop right after the PubAck of a record
// (afterPublish) or right after its marker was written (afterMark) when the
// hook returns an error, as if the process had died there.
func SetReplayHooks(s *Store, afterPublish, afterMark func(seq uint64) error) {
	s.afterPublish, s.afterMark = afterPublish, afterMark
}
