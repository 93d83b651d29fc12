"""Field metadata the Salesforce stand-in describes (``/sobjects/{Name}/describe``) and its SOQL parser checks
literals against. One compound ``address`` field per object: real describes have them, and they are not
queryable as one column, so the connector must skip them."""

from __future__ import annotations

from typing import Any

__all__ = ["OBJECTS", "describe", "field_types", "KEY_PREFIX"]

# (name, type, nillable, label, extra); extra: referenceTo/relationshipName or picklist values
_F = tuple[str, str, bool, str, dict[str, Any]]

OBJECTS: dict[str, tuple[_F, ...]] = {
    "Account": (
        ("Id", "id", False, "Account ID", {}),
        ("Name", "string", False, "Account Name", {}),
        ("Type", "picklist", False, "Account Type", {"values": ("Customer", "Prospect", "Partner")}),
        ("Industry", "picklist", False, "Industry", {"values": ("Technology", "Finance", "Healthcare", "Retail",
                                                                "Manufacturing", "Energy", "Media")}),
        ("AnnualRevenue", "currency", True, "Annual Revenue", {}),
        ("NumberOfEmployees", "int", True, "Employees", {}),
        ("BillingCountry", "string", True, "Billing Country", {}),
        ("BillingAddress", "address", True, "Billing Address", {}),
        ("Rating", "picklist", True, "Account Rating", {"values": ("Hot", "Warm", "Cold")}),
        ("Website", "url", True, "Website", {}),
        ("Tier__c", "picklist", True, "Customer Tier", {"values": ("Gold", "Silver", "Bronze"), "custom": True}),
        ("CreatedDate", "datetime", False, "Created Date", {}),
        ("LastModifiedDate", "datetime", False, "Last Modified Date", {}),
    ),
    "Opportunity": (
        ("Id", "id", False, "Opportunity ID", {}),
        ("Name", "string", False, "Name", {}),
        ("AccountId", "reference", True, "Account ID", {"referenceTo": ["Account"], "relationshipName": "Account"}),
        ("StageName", "picklist", False, "Stage", {"values": ("Prospecting", "Qualification", "Needs Analysis",
                                                             "Proposal/Price Quote", "Negotiation/Review",
                                                             "Closed Won", "Closed Lost")}),
        ("Amount", "currency", True, "Amount", {}),
        ("Probability", "percent", True, "Probability (%)", {}),
        ("CloseDate", "date", False, "Close Date", {}),
        ("IsClosed", "boolean", False, "Closed", {}),
        ("IsWon", "boolean", False, "Won", {}),
        ("Type", "picklist", True, "Opportunity Type", {"values": ("New Business", "Renewal", "Upsell")}),
        ("LeadSource", "picklist", True, "Lead Source", {"values": ("Web", "Partner", "Referral", "Trade Show")}),
        ("CreatedDate", "datetime", False, "Created Date", {}),
        ("LastModifiedDate", "datetime", False, "Last Modified Date", {}),
    ),
    "Contact": (
        ("Id", "id", False, "Contact ID", {}),
        ("AccountId", "reference", True, "Account ID", {"referenceTo": ["Account"], "relationshipName": "Account"}),
        ("FirstName", "string", True, "First Name", {}),
        ("LastName", "string", False, "Last Name", {}),
        ("Email", "email", True, "Email", {}),
        ("Title", "string", True, "Title", {}),
        ("Phone", "phone", True, "Business Phone", {}),
        ("MailingAddress", "address", True, "Mailing Address", {}),
        ("CreatedDate", "datetime", False, "Created Date", {}),
        ("LastModifiedDate", "datetime", False, "Last Modified Date", {}),
    ),
}
KEY_PREFIX = {"Account": "001", "Opportunity": "006", "Contact": "003"}
_TEXT = ("string", "picklist", "url", "email", "phone")
_SOAP = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int", "currency": "xsd:double",
         "percent": "xsd:double", "date": "xsd:date", "datetime": "xsd:dateTime", "address": "urn:address"}


def field_types(sobject: str) -> dict[str, str]:
    """Field name (lower case, as SOQL matches names) → (canonical name, type)."""
    return {name.lower(): kind for name, kind, _, _, _ in OBJECTS[sobject]}


def _field(name: str, kind: str, nillable: bool, label: str, extra: dict[str, Any]) -> dict[str, Any]:
    values = extra.get("values", ())
    return {
        "name": name, "label": label, "type": kind, "soapType": _SOAP.get(kind, "xsd:string"),
        "length": 18 if kind in ("id", "reference") else 255 if kind in ("string", "picklist", "url", "email",
                                                                          "phone") else 0,
        "nillable": nillable, "custom": bool(extra.get("custom")), "filterable": kind != "address",
        "sortable": kind != "address", "groupable": kind not in ("address", "currency", "percent", "datetime"),
        "createable": kind not in ("id", "datetime"), "updateable": kind not in ("id", "datetime"),
        "referenceTo": extra.get("referenceTo", []), "relationshipName": extra.get("relationshipName"),
        "picklistValues": [{"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
                           for v in values],
        "precision": 18 if kind == "currency" else 3 if kind == "percent" else 0,
        "scale": 2 if kind == "currency" else 0, "defaultValue": None,
        "aggregatable": kind not in ("address", "textarea"), "aiPredictionField": False, "autoNumber": False,
        "byteLength": 54 if kind in ("id", "reference") else 765 if kind in _TEXT else 0, "calculated": False,
        "caseSensitive": False, "defaultedOnCreate": kind in ("id", "datetime", "boolean"),
        "deprecatedAndHidden": False, "digits": 9 if kind == "int" else 0, "idLookup": kind == "id",
        "nameField": name == "Name", "permissionable": nillable,
        "polymorphicForeignKey": False, "queryByDistance": False, "restrictedPicklist": kind == "picklist",
        "searchPrefilterable": kind == "reference", "unique": False,
    }


def describe(sobject: str, version: str) -> dict[str, Any]:
    """A DescribeSObjectResult (abbreviated, as ../shared/api-contracts/salesforce/describe.composed-example.json)."""
    base = f"/services/data/v{version}/sobjects/{sobject}"
    plural = sobject[:-1] + "ies" if sobject.endswith("y") else sobject + "s"
    return {
        "name": sobject, "label": sobject, "labelPlural": plural,
        "keyPrefix": KEY_PREFIX[sobject], "custom": False, "queryable": True, "createable": True, "updateable": True,
        "deletable": True, "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
        "fields": [_field(*f) for f in OBJECTS[sobject]],
        "activateable": False, "childRelationships": [], "compactLayoutable": True, "customSetting": False,
        "deepCloneable": False, "deprecatedAndHidden": False, "feedEnabled": True, "hasSubtypes": False,
        "idEnabled": True, "isInterface": False, "isSubtype": False, "layoutable": True,
        "mergeable": sobject != "Opportunity", "mruEnabled": True, "namedLayoutInfos": [], "recordTypeInfos": [],
        "replicateable": True, "retrieveable": True, "searchable": True, "undeletable": True,
    }
