from cfm import catalog


def globals_(request):
    return {"GUIDE_DATE": catalog.GUIDE_DATE, "RULES_VERSION": catalog.RULES_VERSION}
