"""Exports of the registry's devices to network servers: OS2iot's bulk-import CSV, ChirpStack v4's REST API,
The Things Stack's JSON import file.

All carry AppKeys, so all go through Registry.app_keys(), which audits every key read.
"""
