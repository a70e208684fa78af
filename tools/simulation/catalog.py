"""The simulated world's vocabulary: sectors, company names, job titles, content topics."""

from __future__ import annotations

SECTORS: tuple[str, ...] = (
    "energy tech", "industrial automation", "data centre infrastructure", "logistics",
    "fraud detection", "sales training", "medtech", "construction", "fintech",
    "professional services", "manufacturing", "telecom",
)

# the customer-success managers who own the accounts in the CRM (account_profile.owner)
ACCOUNT_OWNERS: tuple[str, ...] = (
    "ana@example.com", "bruno@example.com", "chiara@example.com", "dmitri@example.com",
    "eun-ji@example.com",
)

# sector -> the thought-leadership topics written for it (the playbook's "expertise signal")
TOPICS: dict[str, tuple[str, ...]] = {
    "energy tech": ("electrification", "grid flexibility", "energy storage"),
    "industrial automation": ("predictive maintenance", "robotics roi", "plant uptime"),
    "data centre infrastructure": ("cooling efficiency", "capacity planning", "edge sites"),
    "logistics": ("route optimisation", "warehouse automation", "freight visibility"),
    "fraud detection": ("payment fraud", "gdpr by design", "risk scoring"),
    "sales training": ("sales enablement", "coaching at scale", "pipeline hygiene"),
    "medtech": ("regulatory readiness", "clinical workflows", "device security"),
    "construction": ("project margins", "site safety", "digital twins"),
    "fintech": ("open banking", "compliance automation", "treasury"),
    "professional services": ("utilisation", "client retention", "pricing models"),
    "manufacturing": ("supply chain resilience", "lean operations", "quality data"),
    "telecom": ("network automation", "churn analytics", "5g enterprise"),
}
GENERIC_TOPICS: tuple[str, ...] = ("customer results", "abm benchmarks", "multi-year value")

NAME_STARTS: tuple[str, ...] = (
    "Nord", "Vast", "Green", "Prox", "Hel", "Kron", "Lum", "Tor", "Fjord", "Alt", "Mer",
    "Sol", "Berg", "Ost", "Vik", "Ark", "Lind", "Stor", "Brae", "Cel",
)
NAME_ENDS: tuple[str, ...] = (
    "grid", "ima", "vik", "ion", "lund", "wind", "stad", "era", "tek", "sund", "mark",
    "holm", "dal", "ford", "ia", "ex",
)
NAME_SUFFIXES: tuple[str, ...] = ("AB", "AS", "Oy", "GmbH", "Group", "Solutions", "Industrial",
                                  "Systems", "Partners", "Technologies")

FUNCTIONS: tuple[str, ...] = (
    "commercial", "financial", "technical", "operations", "procurement", "executive", "other",
)
SENIORITIES: tuple[str, ...] = ("c_level", "vp", "director", "manager", "individual")
PROMOTION: dict[str, str] = {
    "individual": "manager", "manager": "director", "director": "vp", "vp": "c_level",
    "c_level": "c_level",
}

# (function, seniority) -> title
_TITLES: dict[str, tuple[str, str, str, str, str]] = {
    # c_level, vp, director, manager, individual
    "commercial": ("Chief Revenue Officer", "VP Marketing", "Marketing Director",
                   "Marketing Manager", "Sales Executive"),
    "financial": ("CFO", "VP Finance", "Head of Finance", "Finance Manager", "Financial Analyst"),
    "technical": ("CTO", "VP Engineering", "IT Director", "IT Manager", "Solutions Engineer"),
    "operations": ("COO", "VP Operations", "Operations Director", "Operations Manager",
                   "Operations Analyst"),
    "procurement": ("Chief Procurement Officer", "VP Procurement", "Head of Procurement",
                    "Procurement Lead", "Buyer"),
    "executive": ("CEO", "Managing Director", "Chief of Staff", "Executive Assistant Manager",
                  "Strategy Analyst"),
    "other": ("Chief People Officer", "VP People", "HR Director", "Legal Counsel",
              "Project Coordinator"),
}


def title_of(function: str, seniority: str) -> str:
    return _TITLES[function][SENIORITIES.index(seniority)]


AD_CHANNELS: tuple[str, ...] = ("linkedin", "meta", "google", "programmatic")
AD_CHANNEL_WEIGHTS: tuple[float, ...] = (0.5, 0.15, 0.15, 0.2)
REPLY_KINDS: tuple[str, ...] = (
    "reply", "positive_reply", "meeting_booked", "not_interested", "unsubscribe",
)
WEBSITE_PAGES: tuple[str, ...] = (
    "/case-studies", "/blog", "/product", "/integrations", "/security", "/about",
)
