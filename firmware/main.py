# Runs the node app; kept tiny so that everything that changes lives in the bysans package.
from bysans import app

app.main()
