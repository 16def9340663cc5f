package transport

// SendOptsAttr is the name of the attribute that carries the SMTPUTF8
// send options in delivery requests and in bounce, defer and trace
// requests. Postfix 3.7 calls it "smtputf8"; Postfix 3.10 renamed it to
// "sendopts". Peers read it strictly, so it must match the installed
// Postfix release.
const SendOptsAttr = "smtputf8"

// classPrivate is the queue subdirectory that holds the sockets of the
// services the queue manager uses.
const classPrivate = "private"

// Protocol names that servers announce on every new connection (Postfix
// 3.6 and later, mail_proto.h).
const (
	protoDeliver = "delivery_request_protocol"
	protoBounce  = "delivery_status_protocol"
	protoRewrite = "trivial_rewrite_protocol"
)
