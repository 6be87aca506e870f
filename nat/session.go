package nat

// SessionCreated is the reason a session hook gets for a flow just
// created (any value past the expiry reasons).
const SessionCreated ExpireReason = 0xFF

// SessionHook is told about every flow the translator creates (reason
// SessionCreated) and every flow it releases (the expiry reason), on the
// worker, for NAT session logging. It must not block or allocate; the
// flow is valid only during the call.
type SessionHook func(f *Flow, reason ExpireReason)

// SetSessionHook sets the session hook (nil: none, the default). Flows
// cost one branch each when there is none. Call it on the worker.
func (t *Translator) SetSessionHook(h SessionHook) { t.onSess = h }
