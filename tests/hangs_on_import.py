import time

time.sleep(3600)  # a module that hangs while it is imported
