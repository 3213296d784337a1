# METADATA
# title: Stagegate standard trial policy
# description: |
#   The rule library (data.stagegate.lib, mounted from the binary) with every
#   rule switched on by data.json. Copy this folder to start a trial's policy:
#   change data.json, keep or extend this module, run `stagegate policy test`.
package stagegate

import data.stagegate.lib

decision := lib.decision
