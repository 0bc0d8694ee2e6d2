"""The synthetic bank's static world: personas, merchant categories, brands, countries, screens,
instruments and campaigns. Plain tuples and NumPy arrays; nothing here is random.

Values are the raw strings a core-banking export would hold ("5411", "TESCO STORES 4521").
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------- personas and latent traits
# Latent traits, in this order, are standard-normal per user plus a persona offset.
TRAITS = ("income", "spend", "stress", "tech", "risk", "churn")

PERSONAS = ("student", "young_professional", "family", "affluent", "retiree", "gig_worker")
# Trait offsets by persona (rows follow PERSONAS, columns TRAITS).
PERSONA_TRAITS = np.array(
    [
        [-1.0, -0.2, 0.3, 0.9, 0.4, 0.4],  # student
        [0.3, 0.4, -0.1, 0.8, 0.5, 0.1],  # young_professional
        [0.1, 0.3, 0.2, 0.0, -0.3, -0.3],  # family
        [1.3, 0.6, -0.7, 0.3, 0.6, -0.2],  # affluent
        [-0.2, -0.5, -0.3, -0.9, -0.7, -0.4],  # retiree
        [-0.5, 0.0, 0.8, 0.5, 0.3, 0.3],  # gig_worker
    ]
)
# Activity multiplier on events per user-month, by persona.
PERSONA_ACTIVITY = np.array([1.05, 1.2, 1.0, 1.1, 0.6, 1.05])
# Age bands by persona (probabilities over AGE_BANDS).
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
PERSONA_AGE = np.array(
    [
        [0.85, 0.15, 0.0, 0.0, 0.0, 0.0],
        [0.15, 0.6, 0.2, 0.05, 0.0, 0.0],
        [0.0, 0.3, 0.45, 0.2, 0.05, 0.0],
        [0.0, 0.15, 0.35, 0.3, 0.15, 0.05],
        [0.0, 0.0, 0.0, 0.05, 0.35, 0.6],
        [0.25, 0.4, 0.2, 0.1, 0.05, 0.0],
    ]
)
OCCUPATIONS = (
    "student", "software_engineer", "nurse", "teacher", "sales", "manager", "retired",
    "driver", "courier", "freelancer", "finance", "hospitality", "unemployed",
)
PERSONA_OCCUPATION = np.array(
    [
        [0.8, 0.0, 0.0, 0.0, 0.05, 0.0, 0.0, 0.0, 0.05, 0.0, 0.0, 0.08, 0.02],
        [0.0, 0.3, 0.1, 0.08, 0.12, 0.12, 0.0, 0.0, 0.0, 0.05, 0.18, 0.05, 0.0],
        [0.0, 0.1, 0.15, 0.15, 0.15, 0.15, 0.0, 0.1, 0.0, 0.05, 0.05, 0.08, 0.02],
        [0.0, 0.2, 0.0, 0.0, 0.05, 0.35, 0.0, 0.0, 0.0, 0.1, 0.3, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.95, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05],
        [0.0, 0.0, 0.0, 0.0, 0.05, 0.0, 0.0, 0.3, 0.35, 0.15, 0.0, 0.1, 0.05],
    ]
)
INCOME_BANDS = ("<15k", "15-30k", "30-50k", "50-80k", "80-120k", "120k+")
KYC_TIERS = ("standard", "enhanced", "premium")
MARITAL = ("single", "married", "partnered", "divorced", "widowed")
HOUSING = ("renting", "mortgage", "owner", "with_parents", "social_housing")

# ---------------------------------------------------------------- countries and currencies
COUNTRIES = ("GB", "IE", "FR", "DE", "ES", "IT", "PL", "LT", "RO", "PT", "NL", "US")
CURRENCIES = ("GBP", "EUR", "EUR", "EUR", "EUR", "EUR", "PLN", "EUR", "RON", "EUR", "EUR", "USD")
# Default home-country mix (configurable as `country_mix`).
COUNTRY_MIX = (0.40, 0.06, 0.10, 0.08, 0.07, 0.05, 0.09, 0.04, 0.05, 0.03, 0.03, 0.0)
# Destinations for travel and for account-takeover logins (foreign to most users).
TRAVEL = ("ES", "FR", "IT", "PT", "US", "GR", "TR", "TH", "AE", "HR")
TRAVEL_CURRENCY = ("EUR", "EUR", "EUR", "EUR", "USD", "EUR", "TRY", "THB", "AED", "EUR")
ATO_COUNTRIES = ("NG", "RU", "VN", "BR", "ID", "UA")
FX_TO_EUR = {"GBP": 1.17, "EUR": 1.0, "PLN": 0.23, "RON": 0.2, "USD": 0.92, "TRY": 0.028,
             "THB": 0.026, "AED": 0.25}

# ---------------------------------------------------------------- merchant categories
# name, MCC, default share of card payments, mean ticket in EUR, lognormal sigma, brands.
# Brands are listed by popularity; "NAME@GB,IE" trades only in those home countries (plain
# names everywhere). Users shop at their home country's brands, travellers at global ones.
CATEGORIES = (
    ("groceries", "5411", 0.30, 32.0, 0.7,
     ("TESCO STORES@GB,IE", "LIDL", "ALDI", "SAINSBURYS@GB", "CARREFOUR@FR,ES,IT,RO,PL",
      "BIEDRONKA@PL", "ASDA@GB", "REWE@DE", "MERCADONA@ES,PT", "KAUFLAND@DE,PL,RO",
      "CO-OP FOOD@GB", "SPAR", "WAITROSE@GB", "ALBERT HEIJN@NL", "ESSELUNGA@IT",
      "PINGO DOCE@PT", "MAXIMA@LT", "MONOPRIX@FR", "DUNNES STORES@IE", "ZABKA@PL")),
    ("restaurants", "5812", 0.10, 38.0, 0.6,
     ("PIZZA HUT", "NANDOS@GB,IE", "PIZZA EXPRESS@GB,IE", "WAGAMAMA@GB,IE,NL", "FIVE GUYS",
      "VAPIANO@DE,NL,PL,LT,RO,FR", "TELEPIZZA@ES,PT,PL", "HIPPOPOTAMUS@FR",
      "LA TAGLIATELLA@ES", "LEON@GB", "DISHOOM@GB", "ROADHOUSE@IT", "SPAGHETTI HOUSE@RO,LT")),
    ("fast_food", "5814", 0.12, 11.0, 0.5,
     ("MCDONALDS", "BURGER KING", "KFC", "GREGGS@GB", "STARBUCKS", "PRET A MANGER@GB,FR,IE",
      "SUBWAY", "COSTA COFFEE@GB,IE,PL", "TIM HORTONS@GB,ES", "MAX BURGERS@PL")),
    ("transport", "4121", 0.08, 16.0, 0.7,
     ("UBER TRIP", "BOLT.EU", "FREENOW", "TFL TRAVEL CH@GB", "TRAINLINE@GB,FR,ES,IT",
      "LIME RIDE", "DB BAHN@DE", "PKP INTERCITY@PL", "RENFE@ES", "SNCF@FR", "TRENITALIA@IT",
      "NS REIZIGERS@NL", "IRISH RAIL@IE", "CP COMBOIOS@PT", "CFR CALATORI@RO", "LTG LINK@LT")),
    ("fuel", "5541", 0.05, 58.0, 0.4,
     ("SHELL", "BP", "ESSO@GB,DE,FR,IT,NL", "ORLEN@PL,LT,DE", "TOTALENERGIES",
      "REPSOL@ES,PT", "ENI@IT", "OMV PETROM@RO", "CIRCLE K@IE,LT,PL")),
    ("online_retail", "5942", 0.10, 36.0, 0.9,
     ("AMAZON MKTPLACE", "ZALANDO@DE,FR,NL,PL,IT,ES,IE,LT,RO,PT", "ALLEGRO@PL,LT", "EBAY",
      "ASOS", "ALIEXPRESS", "ETSY", "EMAG@RO", "BOL.COM@NL", "CDISCOUNT@FR", "OTTO@DE",
      "ARGOS@GB,IE")),
    ("clothing", "5651", 0.04, 55.0, 0.7,
     ("ZARA", "H&M", "PRIMARK", "UNIQLO", "NEXT@GB,IE", "RESERVED@PL,LT,RO,DE")),
    ("pharmacy", "5912", 0.04, 17.0, 0.6,
     ("BOOTS@GB,IE", "SUPERDRUG@GB", "DM DROGERIE@DE", "ROSSMANN@DE,PL",
      "LLOYDS PHARMACY@GB,IE", "PHARMACIE@FR", "FARMACIA@ES,IT,PT,RO", "APTEKA GEMINI@PL",
      "EUROVAISTINE@LT", "ETOS@NL", "APOTHEKE@DE", "CVS PHARMACY@US", "AIRPORT PHARMACY")),
    ("subscriptions", "4899", 0.05, 12.0, 0.3,
     ("NETFLIX.COM", "SPOTIFY", "DISNEY PLUS", "APPLE.COM/BILL", "YOUTUBE PREMIUM", "AUDIBLE")),
    ("utilities", "4900", 0.03, 85.0, 0.4,
     ("VODAFONE", "BRITISH GAS@GB", "EDF ENERGY@GB,FR", "OCTOPUS ENERGY@GB,DE,ES,IT",
      "THAMES WATER@GB", "ORANGE@FR,ES,PL,RO", "ELECTRIC IRELAND@IE", "E.ON@DE,RO",
      "ENEL@IT,ES,RO", "TAURON@PL", "IGNITIS@LT", "EDP@PT,ES", "ENECO@NL", "IBERDROLA@ES,PT")),
    ("travel", "4511", 0.02, 180.0, 0.8,
     ("RYANAIR", "EASYJET", "BOOKING.COM", "AIRBNB", "WIZZ AIR", "BRITISH AIRWAYS")),
    ("entertainment", "7832", 0.03, 24.0, 0.6,
     ("TICKETMASTER", "STEAM GAMES", "PLAYSTATION NETWORK", "ODEON CINEMAS@GB,IE",
      "CINEMA CITY@PL,RO", "PATHE@FR,NL", "CINESA@ES", "UCI KINOWELT@DE,IT")),
    ("gambling", "7995", 0.01, 28.0, 1.0,
     ("BET365", "BETFAIR", "POKERSTARS", "PADDY POWER@GB,IE", "WILLIAM HILL@GB",
      "SKY BET@GB", "STS@PL", "BETANO@RO,PT,DE", "SNAI@IT", "FDJ@FR", "TOPSPORT@LT")),
    ("cash", "6011", 0.03, 80.0, 0.5, ("ATM",)),
)
CAT_NAMES = tuple(c[0] for c in CATEGORIES)
CAT_MCC = tuple(c[1] for c in CATEGORIES)
CAT_SHARE = np.array([c[2] for c in CATEGORIES])
CAT_TICKET = np.array([c[3] for c in CATEGORIES])
CAT_SIGMA = np.array([c[4] for c in CATEGORIES])
CAT_INDEX = {name: i for i, name in enumerate(CAT_NAMES)}
GAMBLING = CAT_INDEX["gambling"]
CASH = CAT_INDEX["cash"]
SUBSCRIPTIONS = CAT_INDEX["subscriptions"]
# Brand table, flattened: brand ids are global; per category a (start, count) slice.
BRANDS = tuple(b.split("@")[0] for c in CATEGORIES for b in c[5])
BRAND_START = np.cumsum([0] + [len(c[5]) for c in CATEGORIES])[:-1]
BRAND_COUNT = np.array([len(c[5]) for c in CATEGORIES])
MAX_BRANDS = int(BRAND_COUNT.max())
# Online brands carry no store number.
ONLINE_CATS = frozenset({"online_retail", "subscriptions", "travel", "gambling", "transport",
                         "utilities"})
BRAND_ONLINE = np.array([CATEGORIES[c][0] in ONLINE_CATS for c in range(len(CATEGORIES))
                         for _ in CATEGORIES[c][5]])


def _brand_countries(spec: str) -> frozenset | None:
    return frozenset(spec.split("@")[1].split(",")) if "@" in spec else None


# BRAND_AVAILABLE[k, c, j]: brand j of category c trades in home country k (COUNTRIES order);
# the last row (k = len(COUNTRIES)) holds the global brands, used abroad.
BRAND_AVAILABLE = np.zeros((len(COUNTRIES) + 1, len(CATEGORIES), MAX_BRANDS), dtype=bool)
for _c, _cat in enumerate(CATEGORIES):
    for _j, _spec in enumerate(_cat[5]):
        _where = _brand_countries(_spec)
        for _k, _country in enumerate(COUNTRIES):
            BRAND_AVAILABLE[_k, _c, _j] = _where is None or _country in _where
        BRAND_AVAILABLE[-1, _c, _j] = _where is None
_MISSING = np.argwhere(~BRAND_AVAILABLE.any(axis=2))
assert not len(_MISSING), f"categories without a brand (country, category): {_MISSING}"

# ---------------------------------------------------------------- transaction vocabulary
TXN_TYPES = (
    "card_payment", "atm_withdrawal", "transfer_out", "transfer_in", "p2p_out", "salary",
    "direct_debit", "fee", "refund", "top_up", "fx_exchange", "card_verification",
)
TXN = {name: i for i, name in enumerate(TXN_TYPES)}
CHANNELS = ("contactless", "chip_pin", "online", "apple_pay", "google_pay", "bank_transfer",
            "atm")
CH = {name: i for i, name in enumerate(CHANNELS)}
# Extra merchants for non-card transaction types (name, mcc).
SPECIAL_MERCHANTS = {
    "salary": ("SALARY", "0000"),
    "overdraft_fee": ("OVERDRAFT FEE", "6012"),
    "missed_payment_fee": ("MISSED PAYMENT FEE", "6012"),
    "fx": ("FX EXCHANGE", "6051"),
    "top_up": ("CARD TOP-UP", "6012"),
    "transfer_out": ("OWN ACCOUNT TRANSFER", "6012"),
    "p2p": ("P2P TRANSFER", "4829"),
    "rent": ("RENT PAYMENT", "6513"),
    "loan": ("LOAN REPAYMENT", "6012"),
    "payday": ("QUICKCASH LOANS", "6141"),
}

# ---------------------------------------------------------------- app
SCREENS = ("home", "cards", "payments", "transactions", "savings", "analytics", "trading",
           "rewards", "support", "settings", "security", "loans")
SCREEN_WEIGHTS = np.array([0.30, 0.10, 0.14, 0.16, 0.06, 0.05, 0.04, 0.04, 0.02, 0.03, 0.02,
                           0.04])
ACTIONS = ("view", "tap", "scroll", "open", "login", "search", "transfer_start", "card_freeze",
           "chat_start", "password_reset", "new_device_login", "close_account")
ACT = {name: i for i, name in enumerate(ACTIONS)}
OS_NAMES = ("iOS 17.5", "iOS 18.1", "iOS 18.3", "Android 13", "Android 14", "Android 15")
# App versions roll out over time: version index = month // 3 (clipped).
APP_VERSIONS = tuple(f"4.{m}.{p}" for m in range(10, 20) for p in (0,))

# ---------------------------------------------------------------- trading
INSTRUMENTS = ("AAPL", "TSLA", "NVDA", "MSFT", "AMZN", "GOOGL", "META", "VUSA", "BTC", "ETH",
               "SOL", "XAU")
INSTRUMENT_PRICE = np.array([185.0, 240.0, 95.0, 410.0, 175.0, 150.0, 480.0, 82.0, 52000.0,
                             2900.0, 140.0, 2100.0])
INSTRUMENT_VOL = np.array([0.015, 0.035, 0.03, 0.012, 0.018, 0.016, 0.022, 0.008, 0.03, 0.035,
                           0.05, 0.008])
CRYPTO = np.array([s in ("BTC", "ETH", "SOL", "XAU") for s in INSTRUMENTS])
SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit", "stop", "recurring_buy")

# ---------------------------------------------------------------- communication
COMM_EVENTS = ("sent", "delivered", "opened", "clicked", "unsubscribed", "converted")
COMM_CHANNELS = ("push", "email", "sms", "in_app")
TEMPLATES = ("cashback_offer_v2", "premium_upsell", "savings_boost", "trading_promo",
             "security_alert", "payment_reminder", "collections_notice", "feature_news",
             "winback_offer")
TPL = {name: i for i, name in enumerate(TEMPLATES)}
# Campaigns whose uplift is recorded in `comm_uplift`: (template, position in the window as a
# fraction of its months; months 9, 15 and 21 of a 25-month window).
UPLIFT_CAMPAIGNS = (("premium_upsell", 0.36), ("savings_boost", 0.6), ("trading_promo", 0.84))

# ---------------------------------------------------------------- profile milestones
MILESTONES = ("account_opened", "kyc_passed", "card_activated", "premium_upgrade",
              "trading_enabled", "address_change")
