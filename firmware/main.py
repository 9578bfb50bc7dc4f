# docs/ota.md step 5: real boots only
from bysans.ota.rundir import start
start()
del start
from bysans import app
app.main()
