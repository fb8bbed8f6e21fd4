# postroom: ISC license, see LICENSE.
# dsn_check.py FILE: parses a delivery status notification (RFC 3464 in a multipart/report,
# RFC 6522) as delivered to a Maildir (Return-Path and Delivered-To lines first, then the
# notice) and prints key=value lines for tests to grep:
#   content_type report_type subject from to auto_submitted message_id cte (the notice's
#   Content-Transfer-Encoding, "" for none) defects (the email package's count for the
#   notice's header, its parts and the status blocks, not inside the returned message)
#   max_line (the longest line in octets, without its LF)
#   envid (Original-Envelope-Id) reporting_mta arrival_date queue_id (X-Postroom-Queue-ID)
#   rcpts (how many per-recipient blocks), then per block N from 0:
#   rcpt.N.final_recipient rcpt.N.original_recipient rcpt.N.action rcpt.N.status
#   rcpt.N.remote_mta rcpt.N.diagnostic_code rcpt.N.last_attempt_date rcpt.N.will_retry_until
#   rcpt.N.envelope_recipient (X-Postroom-Envelope-Recipient)
#   returned_type (message/rfc822, text/rfc822-headers, or "" when nothing is returned)
#   returned_cte returned_subject returned_has_body (0|1)
# A field that is absent prints as "key=". Exits 1 with a message on stderr when FILE is not
# a multipart/report with a message/delivery-status part.
import email
import email.message
import email.parser
import email.policy
import sys

RCPT_FIELDS = [
    ('final_recipient', 'Final-Recipient'),
    ('original_recipient', 'Original-Recipient'),
    ('action', 'Action'),
    ('status', 'Status'),
    ('remote_mta', 'Remote-MTA'),
    ('diagnostic_code', 'Diagnostic-Code'),
    ('last_attempt_date', 'Last-Attempt-Date'),
    ('will_retry_until', 'Will-Retry-Until'),
    ('envelope_recipient', 'X-Postroom-Envelope-Recipient'),
]


def fail(why):
    print('dsn_check: %s' % why, file=sys.stderr)
    sys.exit(1)


def value(msg, name):
    v = msg.get(name) if msg is not None else None
    return '' if v is None else ' '.join(str(v).split())


def out(key, v):
    print('%s=%s' % (key, v))


def blocks_of(part):
    """The per-message block and the per-recipient blocks of a message/delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [b for b in payload if len(b.keys())]
    else:
        parser = email.parser.Parser(policy=email.policy.default)
        text = payload.replace('\r\n', '\n')
        blocks = [parser.parsestr(b, headersonly=True)
                  for b in text.split('\n\n') if b.strip()]
    if not blocks:
        fail('the message/delivery-status part is empty')
    return blocks[0], blocks[1:]


def main():
    if len(sys.argv) != 2:
        fail('usage: dsn_check.py FILE')
    with open(sys.argv[1], 'rb') as f:
        data = f.read()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    if msg.get_content_type() != 'multipart/report':
        fail('not a multipart/report: %s' % msg.get_content_type())
    if not msg.is_multipart():
        fail('multipart/report without parts')
    parts = msg.get_payload()
    status = [p for p in parts if p.get_content_type() == 'message/delivery-status']
    if len(status) != 1:
        fail('%d message/delivery-status parts' % len(status))
    # The notice's own defects: its header and its parts', not the returned message's.
    defects = len(msg.defects) + sum(len(p.defects) for p in parts)
    for block in status[0].get_payload():
        if isinstance(block, email.message.Message):
            defects += len(block.defects)

    out('content_type', msg.get_content_type())
    out('report_type', msg.get_param('report-type') or '')
    out('subject', value(msg, 'Subject'))
    out('from', value(msg, 'From'))
    out('to', value(msg, 'To'))
    out('auto_submitted', value(msg, 'Auto-Submitted'))
    out('message_id', value(msg, 'Message-ID'))
    out('cte', value(msg, 'Content-Transfer-Encoding'))
    out('defects', defects)
    out('max_line', max(len(line) for line in data.split(b'\n')))

    per_msg, rcpts = blocks_of(status[0])
    out('envid', value(per_msg, 'Original-Envelope-Id'))
    out('reporting_mta', value(per_msg, 'Reporting-MTA'))
    out('arrival_date', value(per_msg, 'Arrival-Date'))
    out('queue_id', value(per_msg, 'X-Postroom-Queue-ID'))
    out('rcpts', len(rcpts))
    for n, block in enumerate(rcpts):
        for key, name in RCPT_FIELDS:
            out('rcpt.%d.%s' % (n, key), value(block, name))

    i = parts.index(status[0])
    returned = parts[i + 1] if i + 1 < len(parts) else None
    rtype = returned.get_content_type() if returned is not None else ''
    subject, body = '', 0
    if rtype == 'message/rfc822':
        inner = returned.get_payload()[0]
        subject = value(inner, 'Subject')
        payload = inner.get_payload(decode=True) if not inner.is_multipart() else b'x'
        body = 1 if payload else 0
    elif rtype == 'text/rfc822-headers':
        raw = returned.get_payload(decode=True) or b''
        inner = email.message_from_bytes(raw, policy=email.policy.default)
        subject = value(inner, 'Subject')
        body = 1 if inner.get_payload() else 0
    out('returned_type', rtype)
    out('returned_cte', value(returned, 'Content-Transfer-Encoding'))
    out('returned_subject', subject)
    out('returned_has_body', body)


if __name__ == '__main__':
    main()
