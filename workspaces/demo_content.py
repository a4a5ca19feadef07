"""The content of the local demo workspace that ``manage.py seed_demo`` builds.

Plain data only: people, companies, settings and the ticket scenarios the seed command
draws threads from. Every customer address is under a reserved ``.example`` domain
(RFC 2606) and every agent under ``enque.local``, so nothing the demo does can reach a real
mailbox.

Placeholders in scenario texts, filled by the seed command: ``{first}`` (the customer's
first name), ``{order}``, ``{invoice}``, ``{amount}``, ``{model}``, ``{number}`` (the
ticket's number). Canned replies use the product's own ``{{...}}`` placeholders instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEMO_SLUG = "demo"
DEMO_WORKSPACE_NAME = "Enque Demo"
DEMO_TIMEZONE = "Europe/Amsterdam"
DEMO_SIGNATURE = "The Enque Demo support team"
DEMO_EMAIL = "demo@enque.local"
# A published password for a local demo on purpose: README shows it, the command prints it.
# `seed_demo` refuses to run with ENVIRONMENT=production for that reason.
DEMO_PASSWORD = "enque-demo-2026"  # noqa: S105
# Where `make run` serves the agent UI's sign-in page (serve reads the same HOST and PORT).
ADMIN_URL = f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}/"
# The same draw every time: a demo that is easy to describe and to test.
RANDOM_SEED = 2026


@dataclass(frozen=True)
class DemoAgent:
    email: str
    name: str
    role: str
    teams: tuple[str, ...]


# The first one is the demo login: the workspace owner, and a Django superuser.
AGENTS = (
    DemoAgent(DEMO_EMAIL, "Dana Demo", "owner", ("Support",)),
    DemoAgent("sofia.jansen@enque.local", "Sofia Jansen", "admin", ("Billing", "Support")),
    DemoAgent("liam.devries@enque.local", "Liam de Vries", "agent", ("Support",)),
    DemoAgent("emma.bakker@enque.local", "Emma Bakker", "agent", ("Billing",)),
    DemoAgent("noah.visser@enque.local", "Noah Visser", "agent", ("Technical",)),
    DemoAgent("mila.smit@enque.local", "Mila Smit", "agent", ("Technical", "Support")),
    # Light agent: reads everything, writes internal notes only.
    DemoAgent("lucas.meijer@enque.local", "Lucas Meijer", "light", ("Technical",)),
)

TEAMS = {
    "Support": "First line: accounts, orders, shipping and general questions.",
    "Billing": "Invoices, payments, refunds and subscriptions.",
    "Technical": "The API, webhooks, integrations, bugs and the mobile app.",
}

# name, domains, notes
COMPANIES = (
    ("Northwind Traders", ("northwind.example",), ""),
    ("Contoso Pharmacy", ("contoso.example",), ""),
    ("Fabrikam Logistics", ("fabrikam.example", "fabrikam-logistics.example"), ""),
    ("Tailspin Toys", ("tailspintoys.example",), ""),
    ("Wingtip Bikes", ("wingtip.example",), ""),
    ("Adatum Bank", ("adatum.example",), "Enterprise plan: tighter SLA, VIP handling."),
    ("Lucerne Publishing", ("lucernepublishing.example",), ""),
    ("Woodgrove Hotels", ("woodgrove.example",), ""),
    ("Proseware Labs", ("proseware.example",), "Heavy API user (about 2M calls a day)."),
)
VIP_COMPANY = "Adatum Bank"

# Addresses under these domains belong to no company.
PERSONAL_DOMAINS = ("example.com", "example.net", "example.org")

# 60 people. The first 42 work for the companies above (round robin), the rest write in
# from personal addresses.
CUSTOMER_NAMES = (
    "Anna de Jong",
    "Pieter Janssen",
    "Sophie Müller",
    "Lukas Schmidt",
    "Chloé Martin",
    "Hugo Bernard",
    "Olivia Brown",
    "James Wilson",
    "Isabella Rossi",
    "Marco Bianchi",
    "Eva Novak",
    "Tomás García",
    "Lucía Fernández",
    "Mateo López",
    "Freya Hansen",
    "Oskar Nilsson",
    "Ingrid Larsen",
    "Mikkel Jensen",
    "Zoë van Dijk",
    "Daan Peters",
    "Fatima El Amrani",
    "Yusuf Demir",
    "Amira Haddad",
    "Noor Hendriks",
    "Sven Koster",
    "Julia Kowalska",
    "Piotr Nowak",
    "Elena Popescu",
    "Andrei Ionescu",
    "Hannah Becker",
    "Felix Wagner",
    "Clara Hoffmann",
    "Liam O'Brien",
    "Aoife Murphy",
    "Grace Taylor",
    "Oliver Davies",
    "Emily Clarke",
    "Benjamin Lee",
    "Mia Schneider",
    "Leon Fischer",
    "Sara Lindqvist",
    "Jonas Weber",
    "Priya Sharma",
    "Arjun Patel",
    "Mei Chen",
    "Kenji Tanaka",
    "Yuki Sato",
    "Lina Berg",
    "Niels Vos",
    "Ruth Cohen",
    "David Levi",
    "Camille Dubois",
    "Louis Moreau",
    "Giulia Romano",
    "Nora Aalto",
    "Elias Virtanen",
    "Marta Silva",
    "João Costa",
    "Ava Thompson",
    "Samuel Green",
)
COMPANY_CUSTOMERS = 42

CATEGORIES = {
    "Account": "Logins, passwords, two-factor authentication, personal data.",
    "Billing": "Invoices, payments, refunds and plans.",
    "Shipping & returns": "Orders on their way, damaged parcels, returns.",
    "Technical issue": "Something does not work: the API, the apps, devices.",
    "Feature request": "Ideas for the product.",
    "General question": "How do I...?",
}

TAGS = {
    "billing": "#2563eb",
    "invoice": "#0ea5e9",
    "refund": "#f59e0b",
    "login": "#8b5cf6",
    "api": "#10b981",
    "bug": "#ef4444",
    "shipping": "#a16207",
    "hardware": "#64748b",
    "vip": "#db2777",
    "feature-request": "#14b8a6",
    "privacy": "#475569",
    "mobile": "#6366f1",
}


@dataclass(frozen=True)
class DemoCannedReply:
    title: str
    body: str
    category: str = ""
    # The email of the agent who owns a personal reply; blank for a shared one.
    owner: str = ""


CANNED_REPLIES = (
    DemoCannedReply(
        "Acknowledge: we're on it",
        "Hi {{customer.first_name}},\n\nThanks for getting in touch. Your request is ticket "
        "#{{ticket.number}}; we'll get back to you within one business day.\n\n"
        "Best regards,\n{{agent.name}}",
        "General question",
    ),
    DemoCannedReply(
        "Password reset steps",
        "Hi {{customer.first_name}},\n\nYou can reset your password at any time:\n"
        '1. Open the sign-in page and choose "Forgot password".\n'
        "2. Enter the address you sign in with.\n"
        "3. Follow the link in the email (it is valid for 30 minutes).\n\n"
        "If no email arrives within 10 minutes, please check your spam folder and reply to "
        "this message.\n\nBest regards,\n{{agent.name}}",
        "Account",
    ),
    DemoCannedReply(
        "Ask for more details",
        "Hi {{customer.first_name}},\n\nTo look into ticket #{{ticket.number}} we need a "
        "little more information: the exact error message, when it started, and a "
        "screenshot if you have one.\n\nBest regards,\n{{agent.name}}",
        "General question",
    ),
    DemoCannedReply(
        "Refund approved",
        "Hi {{customer.first_name}},\n\nGood news: your refund has been approved. It will "
        "show on your statement within 5 to 10 business days, depending on your bank.\n\n"
        "Best regards,\n{{agent.name}}",
        "Billing",
    ),
    DemoCannedReply(
        "Invoice copy",
        "Hi {{customer.first_name}},\n\nPlease find a copy of the requested invoice "
        "attached. All invoices are also available under Settings → Billing.\n\n"
        "Best regards,\n{{agent.name}}",
        "Billing",
    ),
    DemoCannedReply(
        "Escalated to engineering",
        "Hi {{customer.first_name}},\n\nThanks for the details. I have passed ticket "
        "#{{ticket.number}} on to our engineers and will update you as soon as I hear "
        "back from them.\n\nBest regards,\n{{agent.name}}",
        "Technical issue",
    ),
    DemoCannedReply(
        "Closing: no response",
        "Hi {{customer.first_name}},\n\nWe haven't heard back from you for a few days, so "
        "we're marking ticket #{{ticket.number}} as resolved. Simply reply to this email "
        "if you still need help and it will reopen.\n\nBest regards,\nThe support team",
        "General question",
    ),
    DemoCannedReply(
        "Feature request logged",
        "Hi {{customer.first_name}},\n\nThank you for the suggestion! I've logged it with "
        "our product team. We can't promise a date, but every request is read and "
        "counted.\n\nBest regards,\n{{agent.name}}",
        "Feature request",
    ),
    DemoCannedReply(
        "API debugging checklist",
        "Hi {{customer.first_name}},\n\nCould you send us:\n- the X-Request-ID header of a "
        "failing response,\n- the endpoint and method,\n- the approximate time (with time "
        "zone)?\nWith those we can find the request in our logs.\n\nThanks,\n{{agent.name}}",
        "Technical issue",
        owner="noah.visser@enque.local",
    ),
)

# Mon-Fri, in the workspace's zone.
OPENING_HOURS = ("09:00", "17:30")
# (month, day, name); the command dates them in the current year, New Year's in the next.
HOLIDAYS = ((4, 27, "King's Day"), (12, 25, "Christmas Day"), (12, 26, "Boxing Day"))

# priority: (first response minutes, resolution minutes), counted in business hours.
SLA_STANDARD = {
    "urgent": (60, 480),
    "high": (240, 1440),
    "normal": (480, 2880),
    "low": (1440, 7200),
}
SLA_ENTERPRISE = {
    "urgent": (30, 240),
    "high": (120, 720),
    "normal": (240, 1440),
    "low": (480, 2880),
}

# Rules of the demo automations that the seed also replays on the history it writes.
INVOICE_KEYWORDS = ("invoice",)
API_KEYWORD = "api"
AUTO_RESOLVE_PENDING_HOURS = 72
AUTO_CLOSE_RESOLVED_HOURS = 96


@dataclass(frozen=True)
class Variant:
    """One story: the messages of a thread, in the order they are written."""

    # Alternatives; one is picked per ticket.
    subjects: tuple[str, ...]
    opening: str
    # The agent's first answer (often a question back), blank for agent-opened threads.
    reply: str
    follow_up: str
    resolution: str
    # An internal note on this story; blank: a generic note.
    note: str = ""


@dataclass(frozen=True)
class Scenario:
    key: str
    team: str
    category: str
    tags: tuple[str, ...]
    # Relative weights of low, normal, high, urgent.
    priorities: tuple[int, int, int, int]
    variants: tuple[Variant, ...]
    # How often it comes up, relative to the others.
    weight: int = 10
    channels: tuple[str, ...] = ("email", "email", "email", "email", "web")


SCENARIOS = (
    Scenario(
        key="printer",
        team="Support",
        category="Technical issue",
        tags=("hardware",),
        priorities=(2, 6, 2, 0),
        weight=7,
        variants=(
            Variant(
                subjects=(
                    "Printer says paper jam but there is no paper stuck",
                    "{model} keeps reporting a paper jam",
                ),
                opening="Since this morning our {model} keeps reporting a paper jam. We "
                "opened every tray and there is nothing stuck. We already switched it off and "
                "on again. Our shipping labels are piling up, can you help?",
                reply="Sorry for the trouble. Could you tell us which firmware version the "
                "{model} shows on its status page (Menu → About)? Versions before 4.2 have a "
                "known sensor issue that looks exactly like this.",
                follow_up="The status page says firmware 4.0.3. Is there an update we can install?",
                resolution="Firmware 4.2.1 fixes the sensor problem. You can install it from "
                "Settings → Printers → {model} → Update firmware; it takes about two minutes. "
                "After the update the jam warning should be gone for good.",
                note="Third {model} case this week, all on firmware below 4.2. Asked the "
                "hardware team whether we can push the update automatically.",
            ),
            Variant(
                subjects=(
                    "Label printer {model} prints blank labels",
                    "Shipping labels come out empty",
                ),
                opening="The {model} we bought from you prints completely blank labels. The "
                "test page from the printer itself looks fine, only labels sent from your app "
                "come out empty.",
                reply="Thanks for the report. Please try a calibration: hold the feed button "
                "for five seconds until the light blinks twice, then print a test label from "
                "Settings → Printers. Does that change anything?",
                follow_up="I did the calibration, the test label now prints but the real "
                "labels are still blank.",
                resolution="We found it: the label size in your account was set to 4x6 while "
                "the printer holds 4x4 labels. I have corrected it, so new labels print "
                "normally now.",
                note="Label size in the account was 4x6, printer has 4x4 stock.",
            ),
        ),
    ),
    Scenario(
        key="login",
        team="Support",
        category="Account",
        tags=("login",),
        priorities=(1, 7, 2, 0),
        weight=14,
        variants=(
            Variant(
                subjects=("Can't log in to my account", "Locked out after too many attempts"),
                opening="I can't sign in anymore: it keeps saying my password is wrong, even "
                "right after I reset it. I'm using the same address as always.",
                reply="Sorry about that. I checked your account and it was locked after "
                "several failed attempts; I have unlocked it. Could you try once more and let "
                "me know if it works?",
                follow_up="Still the same error unfortunately. I'm using Chrome on Windows if "
                "that matters.",
                resolution="The cause was an old saved password in your browser filling in "
                "the form instead of the new one. After removing it (Chrome → Settings → "
                "Passwords), signing in should work again. Let me know if not!",
                note="Customer verified via phone callback before unlocking.",
            ),
            Variant(
                subjects=("Password reset email never arrives", "No password reset email"),
                opening="I requested a password reset three times now but no email arrives. "
                "Not in spam either. Could you check what's going on?",
                reply="Our logs show the reset emails were delivered to your mail server but "
                "then dropped. Could you add noreply@enque.example to your safe senders and "
                "request a new link?",
                follow_up="Added the address, the email arrived this time. But the link says "
                "it expired?",
                resolution="Reset links expire after 30 minutes. I have sent a fresh one just "
                "now: it should be in your inbox. Once you are in, you can change the "
                "password under Profile → Security.",
            ),
        ),
    ),
    Scenario(
        key="2fa",
        team="Support",
        category="Account",
        tags=("login",),
        priorities=(0, 4, 4, 1),
        weight=5,
        variants=(
            Variant(
                subjects=("Lost my phone, locked out by two-factor authentication",),
                opening="My phone was stolen yesterday and with it my authenticator app. Now "
                "I can't log in because of the two-factor code. I don't have the backup codes "
                "either.",
                reply="I'm sorry to hear that. To protect your account we need to verify your "
                "identity before we disable two-factor authentication. Could you reply with "
                "the last four digits of the card on file and the date of your last invoice?",
                follow_up="The card ends in 4417 and the last invoice was on the first of the "
                "month.",
                resolution="Thanks, that matches. I have reset two-factor authentication on "
                "your account: at your next sign-in you will be asked to set it up again. "
                "Please store the new backup codes somewhere safe this time.",
                note="Identity verified against billing details, 2FA reset done.",
            ),
            Variant(
                subjects=("Two-factor codes are always rejected",),
                opening="Every code from my authenticator app is rejected as invalid. I set "
                "it up last week and it worked then.",
                reply="Rejected codes are almost always caused by the phone's clock being out "
                "of sync. Could you make sure the date and time on your phone are set "
                "automatically and try again?",
                follow_up="The clock was set manually, I switched it to automatic and now it "
                "works!",
                resolution="Great, that was it then. Codes depend on the exact time, so keep "
                "the clock on automatic and they will keep working.",
            ),
        ),
    ),
    Scenario(
        key="invoice",
        team="Billing",
        category="Billing",
        tags=("invoice",),
        priorities=(2, 7, 1, 0),
        weight=12,
        variants=(
            Variant(
                subjects=(
                    "Invoice {invoice} shows the wrong VAT number",
                    "Wrong VAT number on invoice {invoice}",
                ),
                opening="Our accounts department rejected invoice {invoice}: the VAT number "
                "on it is our old one. Could you issue a corrected invoice with "
                "NL812345678B01?",
                reply="Thanks for letting us know. I have updated the VAT number in your "
                "billing profile. Would you like the corrected invoice sent to you or "
                "directly to your accounts department?",
                follow_up="Please send it to accounts@ our domain, they handle all of this.",
                resolution="Done: a corrected invoice {invoice} has been sent to your accounts "
                "department and the old one credited. Future invoices will carry the new VAT "
                "number automatically.",
            ),
            Variant(
                subjects=("Please resend invoice {invoice}", "Copy of invoice {invoice} needed"),
                opening="Could you send us invoice {invoice} again? Our finance team can't "
                "find it and needs it for the quarterly close.",
                reply="Of course. Shall I send it to this address, or is there a finance "
                "mailbox that should receive all invoices from now on?",
                follow_up="To me is fine, thanks. And yes, please use finance@ our domain "
                "going forward.",
                resolution="I've sent invoice {invoice} and set the finance mailbox as the "
                "billing contact, so every future invoice goes there as well.",
            ),
        ),
    ),
    Scenario(
        key="double-charge",
        team="Billing",
        category="Billing",
        tags=("billing", "refund"),
        priorities=(0, 3, 5, 1),
        weight=8,
        variants=(
            Variant(
                subjects=("Charged twice for my subscription this month",),
                opening="My credit card statement shows two payments of {amount} for this "
                "month's subscription, one day apart. Please refund the duplicate.",
                reply="I'm sorry about this. I can see one successful payment and one that "
                "our payment provider retried by mistake. I've asked for the duplicate to be "
                "refunded and will confirm as soon as it is processed.",
                follow_up="Thanks. How long will the refund take to show up?",
                resolution="The refund of {amount} was processed today. Depending on your "
                "bank it shows on your statement within 5 to 10 business days.",
                note="Payment provider retried a timed-out charge. Refund issued via the "
                "dashboard.",
            ),
            Variant(
                subjects=("Duplicate payment of {amount} on my card",),
                opening="We were charged {amount} twice. Can you look into this urgently? It "
                "pushed our company card over its limit.",
                reply="Apologies! I can confirm the double charge. Would you like the "
                "{amount} refunded to the card or kept as credit for next month?",
                follow_up="A refund to the card please.",
                resolution="The duplicate payment has been refunded to your card. Sorry again "
                "for the inconvenience; we've fixed the retry problem on our side.",
                note="Same provider retry bug as last week. Refund issued via the dashboard.",
            ),
        ),
    ),
    Scenario(
        key="refund",
        team="Billing",
        category="Billing",
        tags=("refund",),
        priorities=(2, 7, 1, 0),
        weight=8,
        channels=("email", "email", "web"),
        variants=(
            Variant(
                subjects=("Refund request for order {order}", "Return order {order}"),
                opening="I'd like to return order {order}: the jacket is too small and the "
                "bigger size is sold out. How do I get my money back?",
                reply="No problem. I've created a return label for order {order} and emailed "
                "it to you. Once the parcel is scanned by the carrier we'll refund you.",
                follow_up="Sent it back yesterday, here's the tracking number: 3SABC123456789.",
                resolution="The parcel has arrived in our warehouse and the refund for order "
                "{order} has been issued. You'll see it within a few business days.",
            ),
            Variant(
                subjects=("Return and refund for order {order}",),
                opening="Order {order} arrived but it's not what I expected. I'd like to "
                "return it for a refund, it's still unopened.",
                reply="Sorry it didn't work out! You can return it within 30 days. I've "
                "emailed you a prepaid label; please drop the parcel at any pick-up point.",
                follow_up="Thanks, I dropped it off this morning.",
                resolution="Your return was received and refunded in full. Thanks for "
                "shopping with us!",
            ),
        ),
    ),
    Scenario(
        key="api-errors",
        team="Technical",
        category="Technical issue",
        tags=("api", "bug"),
        priorities=(0, 2, 5, 3),
        weight=9,
        channels=("email", "email", "api", "web"),
        variants=(
            Variant(
                subjects=(
                    "API returns 500 on POST /v1/orders",
                    "Intermittent 500 errors from the API since this morning",
                ),
                opening="Since about 10:00 today roughly one in five POST /v1/orders "
                "requests fails with HTTP 500. The body is the same as for successful calls. "
                "Request id of one failure: req_8f2c1a. This blocks our checkout.",
                reply="Thanks for the request id, that helps a lot. I can see the failures in "
                "our logs: they come from one database node that is being replaced. I've "
                "escalated this to our engineers as high priority.",
                follow_up="Any update? We still see failures, though fewer than this morning.",
                resolution="Engineering replaced the faulty node at 14:20 and the error rate "
                "has been zero since. Failed requests are safe to retry. Sorry for the "
                "disruption!",
                note="Linked to incident INC-2291 (db node eu-west-3b). Engineering ETA ~2h.",
            ),
            Variant(
                subjects=("API error: internal_error when creating customers",),
                opening='Our integration gets {"error": "internal_error"} when creating '
                "customers with a + in the email address. Without the + it works fine.",
                reply="I could reproduce it: the + in the address is not encoded before a "
                "lookup. I've filed this with engineering. As a workaround, URL-encode the "
                "address as %2B for now.",
                follow_up="The workaround works for now, thanks. Please let us know when it's "
                "fixed.",
                resolution="The fix was deployed this morning: addresses with a + now work "
                "without encoding. Thanks for the clear report!",
                note="Reproduced with curl, bug filed as ENG-4412.",
            ),
        ),
    ),
    Scenario(
        key="rate-limit",
        team="Technical",
        category="Technical issue",
        tags=("api",),
        priorities=(0, 5, 4, 1),
        weight=6,
        channels=("email", "api", "web"),
        variants=(
            Variant(
                subjects=("Getting 429 Too Many Requests from the API",),
                opening="Our nightly sync hits HTTP 429 after about a minute. We only make "
                "around 150 requests per minute. What are the limits exactly?",
                reply="The default limit is 100 requests per minute per token; every "
                "response carries X-RateLimit-Remaining and, on a 429, Retry-After. Honouring "
                "Retry-After and spreading the sync over a few minutes will avoid the errors.",
                follow_up="We'll add the Retry-After handling. Is there a bulk endpoint we "
                "could use instead?",
                resolution="Yes: list endpoints accept up to 100 items per page with cursor "
                "pagination, which cuts the number of calls a lot. I've also raised your "
                "limit to 200 per minute for the migration.",
            ),
            Variant(
                subjects=("Can you raise our API rate limit?",),
                opening="We're onboarding a large client next month and expect about three "
                "times our current API traffic. Can our rate limit be raised?",
                reply="Happy to help. Could you tell us the expected peak requests per minute "
                "and which endpoints will see most of the traffic?",
                follow_up="Peak around 400 per minute, mostly GET /v1/tickets and POST "
                "/v1/comments.",
                resolution="Your limit is now 500 requests per minute for writes and reads. "
                "Let us know if you run into anything during the onboarding.",
            ),
        ),
    ),
    Scenario(
        key="webhook",
        team="Technical",
        category="Technical issue",
        tags=("bug",),
        priorities=(0, 4, 5, 1),
        weight=5,
        variants=(
            Variant(
                subjects=("Webhooks stopped arriving since yesterday",),
                opening="Our endpoint hasn't received a single webhook since yesterday "
                "afternoon. Nothing changed on our side as far as we know. Can you check?",
                reply="Our delivery log shows your endpoint answering 410 Gone since "
                "yesterday 16:02, so deliveries were paused automatically. Could you check "
                "whether the URL changed?",
                follow_up="You're right, our load balancer moved the endpoint. The new URL is "
                "configured now.",
                resolution="Thanks! I've resumed the deliveries; the queued events from the "
                "last day are being sent now, oldest first.",
            ),
            Variant(
                subjects=("Webhook signature verification fails",),
                opening="We started verifying webhook signatures but every request fails "
                "verification. We use the secret from the dashboard and HMAC-SHA256 over the "
                "body.",
                reply="The signature is computed over the timestamp, a dot and the raw body, "
                "not the body alone. Could you try with that and let me know?",
                follow_up="That was it, verification passes now. Thanks!",
                resolution="Glad it works! I've also asked our docs team to make the signed "
                "payload format clearer.",
            ),
        ),
    ),
    Scenario(
        key="shipping-delay",
        team="Support",
        category="Shipping & returns",
        tags=("shipping",),
        priorities=(2, 7, 1, 0),
        weight=12,
        channels=("email", "email", "web"),
        variants=(
            Variant(
                subjects=(
                    "Order {order} still not delivered",
                    "Tracking for {order} hasn't updated in a week",
                ),
                opening="I ordered ten days ago (order {order}) and it still hasn't arrived. "
                "The tracking page hasn't changed since it left your warehouse.",
                reply="I'm sorry for the wait. The carrier confirms the parcel is in their "
                "hub in Utrecht and was delayed by a backlog. They expect to deliver within "
                "two business days.",
                follow_up="Still nothing today. Can you send a new one instead?",
                resolution="The carrier has marked the parcel as lost, so I've sent a "
                "replacement by express delivery at no cost. New tracking: 3SXYZ998877665.",
                note="Carrier claim filed for the lost parcel.",
            ),
            Variant(
                subjects=("Where is my order {order}?",),
                opening="Could you tell me when order {order} will arrive? It was supposed to "
                "be here by Friday and it's a birthday present.",
                reply="I've checked with the carrier: order {order} is out for delivery "
                "tomorrow. I'll keep an eye on it and let you know if anything changes.",
                follow_up="OK, thanks for checking. Fingers crossed.",
                resolution="Tracking shows order {order} was delivered this morning. Enjoy, "
                "and sorry again for the delay!",
            ),
        ),
    ),
    Scenario(
        key="damaged",
        team="Support",
        category="Shipping & returns",
        tags=("shipping", "refund"),
        priorities=(0, 6, 3, 0),
        weight=6,
        variants=(
            Variant(
                subjects=("Package arrived damaged", "Order {order} arrived broken"),
                opening="The box of order {order} was crushed and the lamp inside is broken. "
                "I have photos if you need them.",
                reply="How annoying, I'm sorry! Could you send a photo of the damage and of "
                "the shipping label? Then I can arrange a replacement straight away.",
                follow_up="Photos attached. A replacement would be great.",
                resolution="Thanks for the photos. A replacement is on its way and will "
                "arrive in two to three business days. No need to return the broken item.",
            ),
            Variant(
                subjects=("Broken glasses in order {order}", "Order {order} arrived broken"),
                opening="Two of the six glasses in order {order} arrived broken. The outer "
                "box looked fine.",
                reply="So sorry about that. Would you prefer a replacement or a refund for "
                "the broken items?",
                follow_up="A replacement please, they're a gift set.",
                resolution="Replacements for the broken items ship today. I've also flagged "
                "the packaging with our warehouse.",
            ),
        ),
    ),
    Scenario(
        key="cancel",
        team="Billing",
        category="Billing",
        tags=("billing",),
        priorities=(2, 7, 1, 0),
        weight=5,
        variants=(
            Variant(
                subjects=("Please cancel our subscription",),
                opening="We're closing the project this quarter, so please cancel our "
                "subscription at the end of the current billing period.",
                reply="Sorry to see you go! I can schedule the cancellation for the end of the "
                "period. Would you like us to export your data before the account closes?",
                follow_up="Yes, an export would be helpful. CSV is fine.",
                resolution="Done: the subscription ends at the end of this period and the "
                "export link has been emailed to you (valid for 7 days). Thanks for having "
                "been a customer.",
            ),
            Variant(
                subjects=("Downgrade from Business to Starter plan",),
                opening="We'd like to move from the Business plan to Starter from next month. "
                "We don't need the extra seats anymore.",
                reply="Sure. Starter includes three seats; you currently have seven agents "
                "active. Which four should be deactivated when the plan changes?",
                follow_up="Please keep the three admins, the rest can go.",
                resolution="Your plan changes to Starter on the first of next month and the "
                "other seats will be deactivated then. The next invoice reflects the new "
                "price.",
            ),
        ),
    ),
    Scenario(
        key="privacy",
        team="Support",
        category="Account",
        tags=("privacy",),
        priorities=(1, 7, 2, 0),
        weight=4,
        variants=(
            Variant(
                subjects=("Request for a copy of my personal data",),
                opening="Under the GDPR I would like a copy of all personal data you hold "
                "about me.",
                reply="We've received your request. To make sure we send the data to the "
                "right person, please confirm it by replying from the address on your "
                "account. We'll then respond within 30 days, usually much sooner.",
                follow_up="Confirming: this is my account address.",
                resolution="Your data export is ready: you'll find a download link in a "
                "separate email, valid for 7 days.",
                note="Logged in the privacy register as DSR-{number}.",
            ),
            Variant(
                subjects=("Please delete my account and all my data",),
                opening="I no longer use your service. Please delete my account and all data "
                "you have about me, and confirm when done.",
                reply="Understood. Before we delete everything: would you like an export of "
                "your order history first? Once deleted it cannot be recovered.",
                follow_up="No export needed, please go ahead.",
                resolution="Your account and personal data have been deleted. Invoices we "
                "must keep by law are retained for 7 years and then removed.",
                note="Logged in the privacy register as DSR-{number}.",
            ),
        ),
    ),
    Scenario(
        key="feature",
        team="Support",
        category="Feature request",
        tags=("feature-request",),
        priorities=(6, 4, 0, 0),
        weight=6,
        channels=("email", "web", "web"),
        variants=(
            Variant(
                subjects=("Feature request: dark mode", "Any plans for a dark theme?"),
                opening="Love the product, but our night shift would really appreciate a "
                "dark mode. Any plans?",
                reply="Thanks for the suggestion! It's on our roadmap and I've added your "
                "vote. I'll let you know when there is news.",
                follow_up="Thanks! Is there a rough timeline?",
                resolution="No firm date yet, but it's planned for the second half of the "
                "year. I'm marking this ticket as resolved; we'll announce it in the "
                "changelog.",
            ),
            Variant(
                subjects=("Could you add CSV export to reports?",),
                opening="It would save us a lot of time if the monthly report could be "
                "exported as CSV instead of copied by hand.",
                reply="Great idea, thank you. I've passed it to the product team together "
                "with your use case.",
                follow_up="Thanks, looking forward to it.",
                resolution="Good news: it's part of this week's release, under Reports → Export.",
            ),
        ),
    ),
    Scenario(
        key="mobile",
        team="Technical",
        category="Technical issue",
        tags=("mobile", "bug"),
        priorities=(0, 5, 4, 1),
        weight=6,
        variants=(
            Variant(
                subjects=("The iOS app crashes when I open settings",),
                opening="Since the last update the iPhone app closes immediately when I tap "
                "Settings. iPhone 13, iOS 17.4, app version 5.2.0.",
                reply="Thanks for the details. We can reproduce the crash on iOS 17.4 and a "
                "fix is being tested. In the meantime you can reach the settings through the "
                "web app.",
                follow_up="OK, I'll wait for the update. Any idea when?",
                resolution="Version 5.2.1 with the fix is now live in the App Store. Please "
                "update and the settings screen will work again.",
                note="Crash reproduced on the iOS 17.4 simulator; fix in 5.2.1 (ENG-4398).",
            ),
            Variant(
                subjects=("Android app doesn't show notifications",),
                opening="I don't get push notifications on Android anymore, even though "
                "they're enabled in the app and in the phone settings. Pixel 7.",
                reply="Could you check whether battery optimisation is turned on for our app "
                "(Settings → Apps → Battery)? It often blocks notifications on Pixel phones.",
                follow_up="Battery optimisation was on. Turned it off and notifications are back!",
                resolution="Good to hear! We've added a hint about battery optimisation to "
                "the app's notification settings.",
            ),
        ),
    ),
    Scenario(
        key="sso",
        team="Technical",
        category="General question",
        tags=("login",),
        priorities=(2, 6, 2, 0),
        weight=4,
        variants=(
            Variant(
                subjects=("How do we set up SAML single sign-on?",),
                opening="We'd like our staff to sign in with our Microsoft Entra ID accounts. "
                "Where do we start?",
                reply="Happy to help! In Settings → Security → Single sign-on you'll find the "
                "metadata URL to register in Entra ID. After that, enter your tenant's "
                "metadata URL back in our settings and test with one user first.",
                follow_up="We've registered the app. Do users need to exist in your system first?",
                resolution="No: with just-in-time provisioning enabled, users are created at "
                "their first sign-in. You're all set!",
            ),
            Variant(
                subjects=("SSO login redirects back to the sign-in page",),
                opening="We configured SSO as described in the docs, but after signing in at "
                "Microsoft users land on your sign-in page again.",
                reply="That loop usually means the reply URL in Entra ID is missing the "
                "trailing slash. Could you compare it with the one shown in our SSO settings?",
                follow_up="The slash was missing indeed. Fixed, testing now.",
                resolution="Great, your test sign-in succeeded in our logs. SSO is working.",
            ),
        ),
    ),
)

# Agent-opened threads: a follow-up after a call, a proactive warning. The customer answers
# the opening message; there is no first reply.
OUTBOUND_SCENARIOS = (
    Scenario(
        key="call-follow-up",
        team="Support",
        category="General question",
        tags=(),
        priorities=(1, 6, 1, 0),
        channels=("web",),
        variants=(
            Variant(
                subjects=("Follow-up on our phone call",),
                opening="Thanks for your call earlier today. As discussed, I've re-activated "
                "your account and reset your plan to the one you had before. Could you "
                "confirm everything looks right on your side?",
                reply="",
                follow_up="Looks good, thank you for the quick help!",
                resolution="Glad to hear it. I'll close this ticket then; have a great day!",
            ),
        ),
    ),
    Scenario(
        key="payment-failed",
        team="Billing",
        category="Billing",
        tags=("billing",),
        priorities=(0, 5, 3, 0),
        channels=("web",),
        variants=(
            Variant(
                subjects=("Your last payment did not go through",),
                opening="The payment of {amount} for your subscription was declined by your "
                "bank. Could you update your card under Settings → Billing within the next 7 "
                "days, so your account stays active?",
                reply="",
                follow_up="Sorry about that, the card had expired. I've added the new one.",
                resolution="Thanks! The payment went through this time. All good now.",
            ),
        ),
    ),
)

# Customer messages any thread can use.
CUSTOMER_CHASERS = (
    "Hi, any update on this? We still have the problem.",
    "Just checking whether you received my message.",
    "Is there any news? It's getting a bit urgent on our side.",
)
CUSTOMER_THANKS = (
    "Thank you, that solved it!",
    "Great, thanks a lot for the quick help.",
    "Perfect, all working again. Thanks!",
    "Thanks! Much appreciated.",
)
DUPLICATE_OPENINGS = (
    "I sent you a message about this earlier but haven't heard back yet, so here it is "
    "again: {subject}.",
    "Second attempt, as my earlier email may have gotten lost: {subject}. Please help.",
)
# Internal notes any thread can use.
GENERIC_NOTES = (
    "Customer called about this as well; told them we're on it.",
    "Checked the account: no other open issues, payment history fine.",
    "@team FYI: same problem reported by another customer this week.",
    "Long-time customer, please handle with care.",
)
ON_HOLD_NOTES = (
    "Waiting for engineering to confirm the fix before we reply. Putting on hold.",
    "Waiting on the carrier's investigation (up to 5 business days). On hold until then.",
    "Waiting for finance to approve the credit note. On hold.",
)

PRINTER_MODELS = ("Zebra ZD421", "Brother QL-820", "DYMO 5XL", "Epson TM-T20III")
AMOUNTS = ("€29.00", "€49.00", "€99.00", "€149.00", "€240.00", "€588.00")
