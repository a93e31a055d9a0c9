"""(Filled in.)"""
