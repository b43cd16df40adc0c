from cfm import catalog


def globals_(request):
    # One spelling of the rules version on every page: the guide's date and cfm's revision of its data.
    return {"GUIDE_DATE": catalog.GUIDE_DATE, "RULES_VERSION": catalog.RULES_VERSION,
            "ROPE_MIN_TRANSFORMERS": catalog.ROPE_FIX["min_transformers"]}
